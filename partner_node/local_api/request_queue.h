// The local API's whole work in progress: a fixed set of worker threads and a bounded queue in
// front of them. Submit never blocks and never takes a thread from gRPC: with the callback API a
// call holds no thread while it waits, so a burst of callers costs the server only the refusals,
// and every refusal is this class's clear RESOURCE_EXHAUSTED, never gRPC's "Server Threadpool
// Exhausted" (which a sync server gives when refusals outnumber its spare threads).
//
// ENSURES: at most `workers` jobs run at once and at most `max_waiting` more wait; Submit beyond
// that returns RESOURCE_EXHAUSTED naming the config keys; jobs run in submission order; the
// destructor runs every job already accepted, then joins the workers. Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace fedface::partner {

class RequestQueue {
 public:
  RequestQueue(int workers, int max_waiting);
  ~RequestQueue();
  RequestQueue(const RequestQueue&) = delete;
  RequestQueue& operator=(const RequestQueue&) = delete;

  // OK: `job` will run on a worker. RESOURCE_EXHAUSTED ("local API busy: ...") when every worker
  // is busy and `max_waiting` jobs already wait; `job` is then dropped unrun.
  absl::Status Submit(std::function<void()> job);

  int workers() const { return static_cast<int>(threads_.size()); }
  int max_waiting() const { return max_waiting_; }

 private:
  void Work();

  const int max_waiting_;
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  int in_flight_ = 0;  // accepted and not finished: running + waiting
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace fedface::partner
