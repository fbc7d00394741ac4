// Bounds the local API's work in progress, so that a burst of callers gets a clear refusal
// instead of gRPC's "Server Threadpool Exhausted" and the partner's memory stays bounded (each
// admitted request may hold one decoded image).
//
// ENSURES: at most max_active requests hold a Ticket at once; at most max_waiting more wait for
// one, each until a slot frees or its caller is gone (cancelled or past its deadline); any
// request beyond those is refused at once with RESOURCE_EXHAUSTED naming the config keys.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>

#include "absl/status/status.h"

namespace fedface::partner {

class RequestAdmission {
 public:
  RequestAdmission(int max_active, int max_waiting)
      : max_active_(max_active), max_waiting_(max_waiting) {}

  // Held while the request works; returns its slot when destroyed.
  class Ticket {
   public:
    explicit Ticket(RequestAdmission* owner) : owner_(owner) {}
    Ticket(Ticket&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    Ticket& operator=(Ticket&&) = delete;
    ~Ticket();

   private:
    RequestAdmission* owner_;
  };

  // OK and *ticket set, or RESOURCE_EXHAUSTED (queue full) / CANCELLED (`gone` became true while
  // waiting; polled every few milliseconds).
  absl::Status Enter(const std::function<bool()>& gone, std::optional<Ticket>* ticket);

  int max_active() const { return max_active_; }
  int max_waiting() const { return max_waiting_; }

 private:
  void Leave();

  const int max_active_;
  const int max_waiting_;
  std::mutex mu_;
  std::condition_variable freed_;
  int active_ = 0;
  int waiting_ = 0;
};

}  // namespace fedface::partner
