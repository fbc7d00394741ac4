#include "partner_node/serve/messageless_calls.h"

#include <utility>
#include <vector>

namespace fedface::partner {

MessagelessCalls::MessagelessCalls(Refuse refuse) : refuse_(std::move(refuse)) {
  janitor_ = std::thread([this] { Janitor(); });
}

MessagelessCalls::~MessagelessCalls() { Stop(); }

void MessagelessCalls::Add(const std::string& vendor, grpc::CallbackServerContext* context,
                           grpc::ServerUnaryReactor* reactor) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && parked_.size() < kMaxParked) {
      parked_.push_back({vendor, context, reactor, std::chrono::steady_clock::now()});
      wake_.notify_one();
      return;
    }
  }
  refuse_(vendor, reactor);
}

void MessagelessCalls::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (janitor_.joinable()) janitor_.join();
}

uint64_t MessagelessCalls::reset_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reset_calls_;
}

void MessagelessCalls::Janitor() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait_for(lock, std::chrono::milliseconds(5),
                   [&] { return stopping_ && parked_.empty(); });
    if (stopping_ && parked_.empty()) return;
    // Settle what can be settled; Finish outside the lock (gRPC may run callbacks inline).
    const auto now = std::chrono::steady_clock::now();
    std::vector<Parked> silent, refused;
    std::deque<Parked> keep;
    for (Parked& p : parked_) {
      if (p.context->IsCancelled()) {
        silent.push_back(std::move(p));
      } else if (stopping_ || now - p.arrived >= kGrace) {
        refused.push_back(std::move(p));
      } else {
        keep.push_back(std::move(p));
      }
    }
    parked_.swap(keep);
    reset_calls_ += silent.size();
    lock.unlock();
    for (const Parked& p : silent) p.reactor->Finish(grpc::Status::CANCELLED);
    for (const Parked& p : refused) refuse_(p.vendor, p.reactor);
    lock.lock();
  }
}

}  // namespace fedface::partner
