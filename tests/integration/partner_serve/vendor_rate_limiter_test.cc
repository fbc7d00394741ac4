// Per-vendor rate limits with an injected clock (no sleeping): counting per vendor and kind,
// window roll-over, and through EvaluationRounds and a real egress guard and ledger, one ledger
// row per window however many calls it refuses.
#include "partner_node/serve/vendor_rate_limiter.h"

#include <gtest/gtest.h>

#include <memory>
#include <sstream>

#include "absl/time/time.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/serve/evaluation_rounds.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

constexpr char kVendor[] = "fedface-vendor";

// A clock the test moves by hand; starts at a window boundary.
struct TestClock {
  absl::Time now = absl::FromUnixSeconds(1'800'000'000 - 1'800'000'000 % 60);
  std::function<absl::Time()> Fn() {
    return [this] { return now; };
  }
};

TEST(VendorRateLimiterTest, RefusesBeyondTheLimitUntilTheWindowRollsOver) {
  TestClock clock;
  std::ostringstream log;
  VendorRateLimiter limiter({.window_seconds = 60, .requests = 0, .replays = 3}, clock.Fn(), &log);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit(kVendor, RateLimitKind::kReplays).allowed);
  RateLimitDecision d = limiter.Admit(kVendor, RateLimitKind::kReplays);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.first_in_window);
  EXPECT_EQ(d.window_start, clock.now);
  for (int i = 0; i < 10; ++i) {
    d = limiter.Admit(kVendor, RateLimitKind::kReplays);
    EXPECT_FALSE(d.allowed);
    EXPECT_FALSE(d.first_in_window);
  }
  // Other vendors and other kinds count apart; a limit of 0 is no limit.
  EXPECT_TRUE(limiter.Admit("other-vendor", RateLimitKind::kReplays).allowed);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(limiter.Admit(kVendor, RateLimitKind::kRequests).allowed);
  }
  // The last second of the window still refuses; the next window admits again.
  clock.now += absl::Seconds(59);
  EXPECT_FALSE(limiter.Admit(kVendor, RateLimitKind::kReplays).allowed);
  clock.now += absl::Seconds(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Admit(kVendor, RateLimitKind::kReplays).allowed);
  d = limiter.Admit(kVendor, RateLimitKind::kReplays);
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(d.first_in_window) << "a new window is recorded again";
  EXPECT_NE(log.str().find("refused 12 of 15 calls"), std::string::npos) << log.str();
}

TEST(VendorRateLimiterTest, OneLedgerRowPerWindowThroughTheRoundsAndTheGuard) {
  const std::string dir = testing::MakeTempDir("vendor_rate_limiter");
  auto budget = *PrivacyBudget::Open(dir + "/budget.db", 10);
  auto ledger = *EgressLedger::Open(dir + "/ledger.db", EgressLedger::OpenMode::kCreateIfMissing);
  EgressGuardConfig config;
  config.k_minimum = 10;
  config.dp.enabled = true;
  config.dp.epsilon_per_release = 1.0;
  config.dp.contribution_bound = 5;
  auto guard = EgressGuard::Create(config, budget.get(), ledger.get(),
                                   std::make_unique<SeededNoiseSource>(1));
  ASSERT_TRUE(guard.ok()) << guard.status();
  TestClock clock;
  VendorRateLimiter limiter({.window_seconds = 60, .requests = 5}, clock.Fn(), nullptr);
  EvaluationRounds rounds(EvaluationJobContext{}, guard->get(), nullptr, &limiter);

  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    const absl::Status s = rounds.RateLimited(kVendor, RateLimitKind::kRequests);
    if (s.ok()) continue;
    ++refused;
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(s.message(), kRateLimitedText);
  }
  EXPECT_EQ(refused, 195);
  EXPECT_EQ((*ledger->Entries()).size(), 1u) << "195 refusals, one window row";
  clock.now += absl::Minutes(1);
  for (int i = 0; i < 5; ++i)
    EXPECT_TRUE(rounds.RateLimited(kVendor, RateLimitKind::kRequests).ok());
  EXPECT_FALSE(rounds.RateLimited(kVendor, RateLimitKind::kRequests).ok());
  const std::vector<LedgerEntry> entries = *ledger->Entries();
  ASSERT_EQ(entries.size(), 2u);
  for (const LedgerEntry& e : entries) EXPECT_EQ(e.message_type, kRateLimitLedgerType);
  EXPECT_NE(entries[1].summary.find("kind=requests limit=5 window="), std::string::npos)
      << entries[1].summary;
  EXPECT_DOUBLE_EQ(*budget->Spent(kVendor), 0.0);
}

}  // namespace
}  // namespace fedface::partner
