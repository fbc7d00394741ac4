#include "partner_node/local_api/request_admission.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace fedface::partner {

RequestAdmission::Ticket::~Ticket() {
  if (owner_ != nullptr) owner_->Leave();
}

absl::Status RequestAdmission::Enter(const std::function<bool()>& gone,
                                     std::optional<Ticket>* ticket) {
  std::unique_lock<std::mutex> lock(mu_);
  if (active_ >= max_active_) {
    if (waiting_ >= max_waiting_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "local API busy: ", max_active_, " requests in progress and ", max_waiting_,
          " waiting (local_api.max_concurrent_requests, local_api.max_queued_requests); retry "
          "later"));
    }
    ++waiting_;
    while (active_ >= max_active_) {
      // The caller's deadline or cancellation is only visible by polling the context.
      freed_.wait_for(lock, std::chrono::milliseconds(20));
      if (active_ < max_active_) break;
      lock.unlock();
      const bool left = gone();
      lock.lock();
      if (left) {
        --waiting_;
        return absl::CancelledError("the caller left (cancelled or deadline passed) while queued");
      }
    }
    --waiting_;
  }
  ++active_;
  ticket->emplace(this);
  return absl::OkStatus();
}

void RequestAdmission::Leave() {
  std::lock_guard<std::mutex> lock(mu_);
  --active_;
  freed_.notify_one();
}

}  // namespace fedface::partner
