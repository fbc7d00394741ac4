// RequestQueue: the whole work in progress of the local API. Jobs here block on a gate the test
// opens, so "every worker busy and the queue full" is a state the test sets up, not a race.
#include "partner_node/local_api/request_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace fedface::partner {
namespace {

// Jobs wait on it until Open(); Started() counts the jobs a worker has begun.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++started_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  void WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this, n] { return started_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  bool open_ = false;
  int started_ = 0;
};

TEST(RequestQueueTest, RefusesBeyondWorkersPlusWaitingWithTheBusyMessageAndRunsEveryAccepted) {
  Gate gate;
  std::mutex order_mu;
  std::vector<int> order;
  {
    RequestQueue queue(/*workers=*/2, /*max_waiting=*/3);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(queue
                      .Submit([&, i] {
                        {
                          std::lock_guard<std::mutex> lock(order_mu);
                          order.push_back(i);  // the order jobs start in
                        }
                        gate.Wait();
                      })
                      .ok())
          << i;
    }
    gate.WaitStarted(2);  // both workers hold a job; three wait
    bool ran = false;
    const absl::Status busy = queue.Submit([&ran] { ran = true; });
    EXPECT_EQ(busy.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(busy.message(),
              "local API busy: 2 requests in progress and 3 waiting "
              "(local_api.max_concurrent_requests, local_api.max_queued_requests); retry later");
    gate.Open();
    // The destructor runs what was accepted, then joins.
  }
  std::sort(order.begin(), order.end());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4})) << "every accepted job ran once";
}

TEST(RequestQueueTest, WaitingJobsRunInTheOrderTheyCame) {
  Gate gate;
  std::vector<int> order;  // one worker: no lock needed beyond the queue's own
  {
    RequestQueue queue(/*workers=*/1, /*max_waiting=*/8);
    ASSERT_TRUE(queue.Submit([&] { gate.Wait(); }).ok());
    gate.WaitStarted(1);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(queue.Submit([&order, i] { order.push_back(i); }).ok());
    gate.Open();
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(RequestQueueTest, AcceptsAgainOnceAJobFinishes) {
  RequestQueue queue(/*workers=*/1, /*max_waiting=*/0);
  Gate gate;
  std::atomic<int> done{0};
  ASSERT_TRUE(queue
                  .Submit([&] {
                    gate.Wait();
                    ++done;
                  })
                  .ok());
  gate.WaitStarted(1);
  EXPECT_EQ(queue.Submit([] {}).code(), absl::StatusCode::kResourceExhausted);
  gate.Open();
  // The slot frees when the job returns; Submit is retried until it is accepted (no sleep: the
  // worker's decrement is the only thing awaited, and it comes).
  absl::Status again;
  do {
    again = queue.Submit([&] { ++done; });
  } while (!again.ok());
  EXPECT_EQ(again.code(), absl::StatusCode::kOk);
}

}  // namespace
}  // namespace fedface::partner
