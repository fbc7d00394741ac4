// The round runner over real gRPC on loopback, against scripted EvaluationService servers: a
// real partner cannot be made to fail with UNAVAILABLE exactly twice and then answer, so the
// retry, deadline and parallelism rules are pinned here; tests/integration/rounds runs the same
// runner against real partner_node processes.
#include "model_vendor/coordinator/round_runner.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "fedface/v1/evaluation.grpc.pb.h"
#include "tests/unit/coordinator/release_fixture.h"

namespace fedface::vendor {
namespace {

using testing::MakeKMinimumRelease;
using testing::MakeRelease;
using testing::NormalDistances;
using testing::TestRequest;

fedface::v1::EvaluationRelease Good(const RoundRequest& request) {
  std::mt19937_64 rng(1);
  return MakeRelease(request,
                     *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 100, 0.4, 0.1)),
                     *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 900, 0.9, 0.1)));
}

// Answers call n (0-based) with script(n, request, context, &release).
using Script = std::function<grpc::Status(int, const fedface::v1::RunEvaluationRequest&,
                                          grpc::ServerContext*, fedface::v1::EvaluationRelease*)>;

class ScriptedPartner final : public fedface::v1::EvaluationService::Service {
 public:
  explicit ScriptedPartner(Script script) : script_(std::move(script)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~ScriptedPartner() override { server_->Shutdown(std::chrono::system_clock::now()); }

  grpc::Status RunEvaluation(grpc::ServerContext* context,
                             const fedface::v1::RunEvaluationRequest* request,
                             fedface::v1::EvaluationRelease* release) override {
    int n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = static_cast<int>(requests_.size());
      requests_.push_back(request->SerializeAsString());
    }
    return script_(n, *request, context, release);
  }

  PartnerEndpoint endpoint(const std::string& name) const {
    return {name, absl::StrCat("127.0.0.1:", port_), "localhost"};
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  Script script_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

RoundPolicy FastPolicy() {
  RoundPolicy p;
  p.quorum = 1;
  p.call_deadline = absl::Seconds(20);
  p.round_deadline = absl::Seconds(120);
  p.max_attempts = 4;
  p.initial_backoff = absl::Milliseconds(20);
  p.max_backoff = absl::Milliseconds(100);
  return p;
}

PartnerOutcome RunOne(ScriptedPartner& partner, const RoundPolicy& policy,
                      const RoundRequest& request, std::string* log_text = nullptr) {
  std::ostringstream log;
  RoundRunner runner(grpc::InsecureChannelCredentials(), policy, &log);
  std::vector<PartnerOutcome> out = runner.Run(request, {partner.endpoint("acme")}, {});
  if (log_text) *log_text = log.str();
  return out.at(0);
}

// Blocks until the client gives up (deadline) or the server shuts down.
void WaitForCancellation(grpc::ServerContext* context) {
  while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
}

TEST(RoundRunnerTest, RetriesUnavailableWithTheIdenticalRequestUntilThePartnerAnswers) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int n, const auto&, auto*, auto* release) {
    if (n < 2) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting");
    *release = Good(request);
    return grpc::Status::OK;
  });
  std::string log;
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request, &log);
  EXPECT_EQ(o.status, PartnerStatus::kContributed) << o.reason;
  EXPECT_EQ(o.attempts, 3);
  EXPECT_EQ(o.grpc_code, "OK");
  const std::vector<std::string> seen = partner.requests();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_EQ(seen[1], seen[2]);
  fedface::v1::RunEvaluationRequest first;
  ASSERT_TRUE(first.ParseFromString(seen[0]));
  EXPECT_EQ(first.round_id(), "round-1");
  EXPECT_EQ(first.seed(), request.seed);
  EXPECT_EQ(o.egress.requests_sent, 3);
  EXPECT_EQ(o.egress.request_bytes, 3 * static_cast<int64_t>(seen[0].size()));
  EXPECT_EQ(o.egress.messages_received, 1);
  EXPECT_EQ(o.egress.bytes_received, static_cast<int64_t>(Good(request).ByteSizeLong()));
  EXPECT_NE(log.find("attempt 1 UNAVAILABLE: restarting; retrying"), std::string::npos) << log;
}

TEST(RoundRunnerTest, DoesNotRetryAPrivacyBudgetRefusal) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto*) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        "privacy budget: 0.5 of 3 left, release costs 1");
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kRefused);
  EXPECT_EQ(o.attempts, 1);
  EXPECT_EQ(partner.requests().size(), 1u);
  EXPECT_EQ(o.grpc_code, "RESOURCE_EXHAUSTED");
  EXPECT_NE(o.reason.find("privacy budget"), std::string::npos) << o.reason;
  EXPECT_NE(o.reason.find("0.5 of 3 left"), std::string::npos) << o.reason;
  EXPECT_FALSE(o.release);
}

TEST(RoundRunnerTest, SaysAReleaseHeldForApprovalNeedsARerunWithTheSameRoundId) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto*) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "held for approval (id 4): a person at the partner must approve it");
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kRefused);
  EXPECT_EQ(o.attempts, 1);
  EXPECT_NE(o.reason.find("held for approval (id 4)"), std::string::npos) << o.reason;
  EXPECT_NE(o.reason.find("same --round-id"), std::string::npos) << o.reason;
}

TEST(RoundRunnerTest, ReportsASlowPartnerAsTimedOutAfterEveryAttempt) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, grpc::ServerContext* context, auto*) {
    WaitForCancellation(context);
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  });
  RoundPolicy policy = FastPolicy();
  policy.call_deadline = absl::Milliseconds(300);
  policy.max_attempts = 2;
  const PartnerOutcome o = RunOne(partner, policy, request);
  EXPECT_EQ(o.status, PartnerStatus::kTimedOut);
  EXPECT_EQ(o.attempts, 2);
  EXPECT_EQ(o.grpc_code, "DEADLINE_EXCEEDED");
  EXPECT_NE(o.reason.find("after 2 attempts"), std::string::npos) << o.reason;
}

TEST(RoundRunnerTest, ReportsAnAddressWithNothingListeningAsUnreachable) {
  // A port that was free a moment ago: bind, read it, close.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  const PartnerEndpoint nowhere{"down", absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)),
                                "localhost"};
  RoundPolicy policy = FastPolicy();
  policy.max_attempts = 3;
  RoundRunner runner(grpc::InsecureChannelCredentials(), policy, nullptr);
  const PartnerOutcome o = runner.Run(TestRequest(), {nowhere}, {}).at(0);
  EXPECT_EQ(o.status, PartnerStatus::kUnreachable);
  EXPECT_EQ(o.attempts, 3);
  EXPECT_EQ(o.egress.messages_received, 0);
  EXPECT_NE(o.reason.find("unreachable after 3 attempts"), std::string::npos) << o.reason;
}

TEST(RoundRunnerTest, TreatsAReleaseForAnotherRoundAsThatPartnersFailure) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto* release) {
    *release = Good(TestRequest("some-other-round"));
    return grpc::Status::OK;
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kFailed);
  EXPECT_NE(o.reason.find("round_id"), std::string::npos) << o.reason;
  EXPECT_FALSE(o.release);
  EXPECT_EQ(o.egress.messages_received, 1);  // it did arrive, and is counted
}

TEST(RoundRunnerTest, RefusesAnOversizedAnswerBeforeParsingIt) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto* release) {
    *release = Good(request);
    for (int i = 0; i < 40000; ++i) release->mutable_genuine_histogram()->add_counts(1);
    return grpc::Status::OK;
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kFailed);
  EXPECT_EQ(o.grpc_code, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(o.attempts, 1);
}

TEST(RoundRunnerTest, ReportsAKMinimumReleaseAsWithheldWithTheReason) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto* release) {
    *release = MakeKMinimumRelease(request);
    return grpc::Status::OK;
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kWithheld);
  EXPECT_NE(o.reason.find("k-minimum"), std::string::npos) << o.reason;
  ASSERT_TRUE(o.release);
}

TEST(RoundRunnerTest, AsksEveryPartnerAtTheSameTime) {
  // Each partner answers only once all three requests have arrived: asked one after the other,
  // the first would wait for the others in vain and time out.
  const RoundRequest request = TestRequest();
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  const Script barrier = [&](int, const auto&, auto*, auto* release) {
    std::unique_lock<std::mutex> lock(mu);
    ++arrived;
    cv.notify_all();
    if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return arrived >= 3; })) {
      return grpc::Status(grpc::StatusCode::ABORTED, "the other partners were not asked");
    }
    *release = Good(request);
    return grpc::Status::OK;
  };
  ScriptedPartner a(barrier), b(barrier), c(barrier);
  std::vector<std::string> saved;
  RoundPolicy policy = FastPolicy();
  policy.max_attempts = 1;
  policy.call_deadline = absl::Seconds(60);
  RoundRunner runner(grpc::InsecureChannelCredentials(), policy, nullptr);
  const std::vector<PartnerOutcome> out =
      runner.Run(request, {a.endpoint("a"), b.endpoint("b"), c.endpoint("c")},
                 [&](const PartnerOutcome& o) { saved.push_back(o.partner.name); });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].partner.name, "a");
  EXPECT_EQ(out[2].partner.name, "c");
  for (const PartnerOutcome& o : out) {
    EXPECT_EQ(o.status, PartnerStatus::kContributed) << o.partner.name << ": " << o.reason;
  }
  EXPECT_EQ(saved.size(), 3u);
}

TEST(RoundRunnerTest, StopsRetryingAtTheRoundDeadline) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto*) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
  });
  RoundPolicy policy = FastPolicy();
  policy.max_attempts = 100;
  policy.initial_backoff = absl::Milliseconds(400);
  policy.max_backoff = absl::Milliseconds(400);
  policy.round_deadline = absl::Seconds(2);
  const PartnerOutcome o = RunOne(partner, policy, request);
  EXPECT_EQ(o.status, PartnerStatus::kUnreachable);
  EXPECT_LT(o.attempts, 100);
  EXPECT_GE(o.attempts, 1);
  EXPECT_EQ(static_cast<int>(partner.requests().size()), o.attempts);
}

TEST(RoundRunnerTest, KeepsHostileErrorTextOutOfTheReasonExceptAsPrintableText) {
  const RoundRequest request = TestRequest();
  ScriptedPartner partner([&](int, const auto&, auto*, auto*) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        std::string("bad\x01\x7f") + std::string(1000, 'x'));
  });
  const PartnerOutcome o = RunOne(partner, FastPolicy(), request);
  EXPECT_EQ(o.status, PartnerStatus::kFailed);
  EXPECT_EQ(o.reason.find('\x01'), std::string::npos);
  EXPECT_LT(o.reason.size(), 400u);
  EXPECT_NE(o.reason.find("INTERNAL"), std::string::npos);
}

}  // namespace
}  // namespace fedface::vendor
