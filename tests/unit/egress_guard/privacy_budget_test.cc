// The privacy budget on a real SQLite file: limits, replays, restarts.
#include "partner_node/egress/privacy_budget.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

StoredRelease Release(const std::string& vendor, const std::string& round, double epsilon,
                      const std::string& hash = "h") {
  return StoredRelease{vendor, round, hash, epsilon, "bytes of " + round};
}

TEST(PrivacyBudget, RefusesOverspendingAlsoAfterReopening) {
  const std::string path = testing::MakeTempDir("budget") + "/budget.db";
  {
    auto budget = PrivacyBudget::Open(path, 1.0);
    ASSERT_TRUE(budget.ok()) << budget.status();
    EXPECT_TRUE((*budget)->ChargeAndStore(Release("vendor-a", "r1", 0.4)).ok());
    EXPECT_TRUE((*budget)->ChargeAndStore(Release("vendor-a", "r2", 0.4)).ok());
    absl::StatusOr<StoredRelease> third = (*budget)->ChargeAndStore(Release("vendor-a", "r3", 0.4));
    EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_NE(third.status().message().find("privacy budget exhausted"), std::string::npos);
  }
  auto reopened = PrivacyBudget::Open(path, 1.0);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_DOUBLE_EQ(*(*reopened)->Spent("vendor-a"), 0.8);
  EXPECT_EQ((*reopened)->ChargeAndStore(Release("vendor-a", "r3", 0.4)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE((*(*reopened)->Find("vendor-a", "r3")).has_value());  // nothing recorded
  // Exactly the remainder still fits (no floating-point drift: 0.4 + 0.4 + 0.2 == 1.0).
  EXPECT_TRUE((*reopened)->ChargeAndStore(Release("vendor-a", "r4", 0.2)).ok());
}

// A vendor that holds several identities (names, certificates) does not get several budgets:
// the partner has one, and every identity's spending counts against it.
TEST(PrivacyBudget, EveryVendorIdentitySpendsTheOneBudgetOfThePartner) {
  const std::string path = testing::MakeTempDir("budget-shared") + "/budget.db";
  auto budget = PrivacyBudget::Open(path, 1.0);
  ASSERT_TRUE(budget.ok()) << budget.status();
  EXPECT_TRUE((*budget)->ChargeAndStore(Release("CN=vendor", "r1", 0.6)).ok());
  EXPECT_EQ((*budget)->ChargeAndStore(Release("CN=vendor-second-name", "r1", 0.6)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE((*budget)->ChargeAndStore(Release("CN=vendor-second-name", "r2", 0.4)).ok());
  EXPECT_DOUBLE_EQ(*(*budget)->Spent("CN=vendor"), 0.6);
  EXPECT_DOUBLE_EQ(*(*budget)->Spent("CN=vendor-second-name"), 0.4);
  EXPECT_DOUBLE_EQ(*(*budget)->SpentByAll(), 1.0);
  EXPECT_EQ((*budget)->ChargeAndStore(Release("CN=third", "r1", 0.1)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(PrivacyBudget, RepeatedIdenticalRequestGetsStoredBytesAndIsChargedOnce) {
  const std::string path = testing::MakeTempDir("budget") + "/budget.db";
  auto budget = PrivacyBudget::Open(path, 5.0);
  ASSERT_TRUE(budget.ok());
  ASSERT_TRUE((*budget)->ChargeAndStore(Release("v", "r1", 1.0, "hash1")).ok());
  StoredRelease again = Release("v", "r1", 1.0, "hash1");
  again.release_bytes = "fresh noise that must not be sent";
  absl::StatusOr<StoredRelease> stored = (*budget)->ChargeAndStore(again);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->release_bytes, "bytes of r1");
  EXPECT_DOUBLE_EQ(*(*budget)->Spent("v"), 1.0);
  // Same round, different request: refused.
  EXPECT_EQ((*budget)->ChargeAndStore(Release("v", "r1", 1.0, "hash2")).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(PrivacyBudget, ZeroLimitAllowsOnlyReleasesWithoutNoise) {
  auto budget = PrivacyBudget::Open(testing::MakeTempDir("budget") + "/b.db", 0.0);
  ASSERT_TRUE(budget.ok());
  EXPECT_TRUE((*budget)->ChargeAndStore(Release("v", "r1", 0.0)).ok());
  EXPECT_EQ((*budget)->ChargeAndStore(Release("v", "r2", 0.1)).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(PrivacyBudget, RefusesAnotherSqliteFileAndBadLimits) {
  const std::string path = testing::MakeTempDir("budget") + "/other.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  absl::StatusOr<std::unique_ptr<PrivacyBudget>> budget = PrivacyBudget::Open(path, 1.0);
  EXPECT_FALSE(budget.ok());
  EXPECT_NE(budget.status().message().find("other.db"), std::string::npos);
  EXPECT_FALSE(PrivacyBudget::Open(path + "2", -1.0).ok());
}

}  // namespace
}  // namespace fedface::partner
