// The re-embedding allowance: the per-round and per-day bounds, the UTC day a charge falls on,
// and that the day's count survives reopening the file (a restart of `partner_node serve`).
#include "partner_node/serve/reembedding_allowance.h"

#include <gtest/gtest.h>

#include "absl/time/civil_time.h"
#include "partner_node/egress/privacy_budget.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

absl::Time UtcAt(int year, int month, int day, int hour, int minute) {
  return absl::FromCivil(absl::CivilMinute(year, month, day, hour, minute), absl::UTCTimeZone());
}

TEST(ReembeddingAllowanceTest, AdmitsWithinBothBoundsAndChargesOnlyWhatItAdmits) {
  const std::string dir = testing::MakeTempDir("allowance");
  auto allowance = ReembeddingAllowance::Open(dir + "/reembedding.db",
                                              {.max_per_round = 50, .max_per_day = 100});
  ASSERT_TRUE(allowance.ok()) << allowance.status();
  const absl::Time morning = UtcAt(2030, 5, 1, 8, 0);
  EXPECT_TRUE((*allowance)->Admit(40, morning).ok());
  absl::Status too_big = (*allowance)->Admit(51, morning);
  EXPECT_EQ(too_big.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(too_big.message().find("per round"), std::string::npos) << too_big;
  EXPECT_TRUE((*allowance)->Admit(50, morning).ok());
  absl::Status over_day = (*allowance)->Admit(11, morning + absl::Hours(15));  // 23:00 UTC
  EXPECT_EQ(over_day.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over_day.message().find("per day"), std::string::npos) << over_day;
  EXPECT_NE(over_day.message().find("90 already"), std::string::npos) << over_day;
  EXPECT_TRUE((*allowance)->Admit(10, morning).ok()) << "exactly the bound is allowed";
  EXPECT_EQ(*(*allowance)->UsedOn(morning), 100);
  EXPECT_EQ((*allowance)->Admit(1, morning).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE((*allowance)->Admit(0, morning).ok()) << "work that needs nothing is not refused";
  // The next UTC day starts at zero.
  const absl::Time next_day = UtcAt(2030, 5, 2, 0, 1);
  EXPECT_EQ(*(*allowance)->UsedOn(next_day), 0);
  EXPECT_TRUE((*allowance)->Admit(50, next_day).ok());
}

TEST(ReembeddingAllowanceTest, TheDaysCountSurvivesReopeningTheFile) {
  const std::string dir = testing::MakeTempDir("allowance-reopen");
  const absl::Time noon = UtcAt(2030, 5, 1, 12, 0);
  {
    auto allowance = ReembeddingAllowance::Open(dir + "/reembedding.db",
                                                {.max_per_round = 100, .max_per_day = 100});
    ASSERT_TRUE(allowance.ok()) << allowance.status();
    ASSERT_TRUE((*allowance)->Admit(80, noon).ok());
  }
  auto reopened = ReembeddingAllowance::Open(dir + "/reembedding.db",
                                             {.max_per_round = 100, .max_per_day = 100});
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*(*reopened)->UsedOn(noon), 80);
  EXPECT_EQ((*reopened)->Admit(21, noon).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE((*reopened)->Admit(20, noon).ok());
}

TEST(ReembeddingAllowanceTest, RefusesAnotherStoresFile) {
  const std::string dir = testing::MakeTempDir("allowance-other");
  ASSERT_TRUE(PrivacyBudget::Open(dir + "/budget.db", 10).ok());
  auto other =
      ReembeddingAllowance::Open(dir + "/budget.db", {.max_per_round = 1, .max_per_day = 1});
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("not a re-embedding allowance database"),
            std::string::npos)
      << other.status();
}

}  // namespace
}  // namespace fedface::partner
