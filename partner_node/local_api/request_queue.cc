#include "partner_node/local_api/request_queue.h"

#include "absl/strings/str_cat.h"

namespace fedface::partner {

RequestQueue::RequestQueue(int workers, int max_waiting) : max_waiting_(max_waiting) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Work(); });
}

RequestQueue::~RequestQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

absl::Status RequestQueue::Submit(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (in_flight_ >= workers() + max_waiting_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "local API busy: ", workers(), " requests in progress and ", max_waiting_,
          " waiting (local_api.max_concurrent_requests, local_api.max_queued_requests); retry "
          "later"));
    }
    ++in_flight_;
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
  return absl::OkStatus();
}

void RequestQueue::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing accepted is left
    std::function<void()> job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
    --in_flight_;
  }
}

}  // namespace fedface::partner
