// Calls to the vendor port that arrived without a request message: either the caller reset the
// stream right after its headers (HTTP/2 "rapid reset", CVE-2023-44487) or it half-closed the
// stream without sending one. gRPC 1.51 still runs the handler for both, before the reset is
// visible to it (CallbackServerContext::IsCancelled turns true a little later).
//
// ENSURES: a parked call whose caller reset it is finished with no work, no status on the wire
// and no ledger row (nothing can reach the caller); one still open after kGrace, or beyond
// kMaxParked parked calls, or at Stop, is passed to `refuse` (the guard's ledgered refusal).
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace fedface::partner {

class MessagelessCalls {
 public:
  static constexpr std::chrono::milliseconds kGrace{200};
  static constexpr size_t kMaxParked = 16384;

  // `refuse(vendor, reactor)` must Finish the reactor with the guard's refusal.
  using Refuse = std::function<void(const std::string& vendor, grpc::ServerUnaryReactor* reactor)>;
  explicit MessagelessCalls(Refuse refuse);
  ~MessagelessCalls();  // Stop()s
  MessagelessCalls(const MessagelessCalls&) = delete;
  MessagelessCalls& operator=(const MessagelessCalls&) = delete;

  void Add(const std::string& vendor, grpc::CallbackServerContext* context,
           grpc::ServerUnaryReactor* reactor);
  // Finishes every parked call (reset ones silently, others refused) and joins the janitor.
  void Stop();
  // Calls finished silently because their caller had reset them (for logs and tests).
  uint64_t reset_calls() const;

 private:
  struct Parked {
    std::string vendor;
    grpc::CallbackServerContext* context;
    grpc::ServerUnaryReactor* reactor;
    std::chrono::steady_clock::time_point arrived;
  };
  void Janitor();

  const Refuse refuse_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Parked> parked_;
  bool stopping_ = false;
  uint64_t reset_calls_ = 0;
  std::thread janitor_;
};

}  // namespace fedface::partner
