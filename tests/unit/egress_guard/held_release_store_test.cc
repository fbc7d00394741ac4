// The store of releases held for approval: one row per (vendor, round_id), the states a person
// moves it through, and that everything survives reopening the file.
#include "partner_node/egress/held_release_store.h"

#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

HeldRelease Row(const std::string& round, const std::string& hash) {
  HeldRelease r;
  r.vendor = "fedface-vendor";
  r.round_id = round;
  r.request_sha256 = hash;
  r.summary = "verification model=1.0.0 seed=1 non_mated_sample=0";
  r.epsilon = 0.5;
  r.release_bytes = std::string("\x0a\x02r1\x00\xff", 6);
  return r;
}

TEST(HeldReleaseStoreTest, HoldsOncePerRoundAndRefusesAnotherRequestUnderTheSameRound) {
  const std::string dir = testing::MakeTempDir("held");
  auto store =
      HeldReleaseStore::Open(dir + "/held.db", HeldReleaseStore::OpenMode::kCreateIfMissing);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<HeldRelease> first = (*store)->Hold(Row("r1", "aa"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id, 1);
  EXPECT_EQ(first->state, HeldState::kHeld);
  EXPECT_EQ(first->release_bytes, Row("r1", "aa").release_bytes);
  EXPECT_DOUBLE_EQ(first->epsilon, 0.5);
  EXPECT_FALSE(first->held_utc.empty());
  absl::StatusOr<HeldRelease> again = (*store)->Hold(Row("r1", "aa"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, 1);
  absl::StatusOr<HeldRelease> other = (*store)->Hold(Row("r1", "bb"));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<HeldRelease> second = (*store)->Hold(Row("r2", "bb"));
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->id, 2);
}

TEST(HeldReleaseStoreTest, MovesThroughApprovedToSentAndRemembersAfterReopen) {
  const std::string path = testing::MakeTempDir("held") + "/held.db";
  {
    auto store = HeldReleaseStore::Open(path, HeldReleaseStore::OpenMode::kCreateIfMissing);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Hold(Row("r1", "aa")).ok());
    ASSERT_TRUE((*store)->Hold(Row("r2", "bb")).ok());
    EXPECT_TRUE((*store)->MarkApproved(1).ok());
    EXPECT_TRUE((*store)->MarkApproved(1).ok());  // approving twice is harmless
    EXPECT_TRUE((*store)->MarkDeclined(2).ok());
    EXPECT_EQ((*store)->MarkApproved(2).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*store)->MarkSent(2).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((*store)->MarkApproved(9).code(), absl::StatusCode::kNotFound);
  }
  auto store = HeldReleaseStore::Open(path, HeldReleaseStore::OpenMode::kMustExist);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::optional<HeldRelease>> r1 = (*store)->Find("fedface-vendor", "r1");
  ASSERT_TRUE(r1.ok() && r1->has_value());
  EXPECT_EQ((*r1)->state, HeldState::kApproved);
  EXPECT_FALSE((*r1)->decided_utc.empty());
  EXPECT_TRUE((*store)->MarkSent(1).ok());
  EXPECT_EQ((*store)->MarkDeclined(1).code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::vector<HeldRelease>> all = (*store)->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].state, HeldState::kSent);
  EXPECT_FALSE((*all)[0].sent_utc.empty());
  EXPECT_EQ((*all)[1].state, HeldState::kDeclined);
  EXPECT_FALSE((*store)->Find("other-vendor", "r1")->has_value());
}

// What `releases show ID --local` needs (the request and the digest of the exact evaluation) is
// kept beside the row, survives reopening, and is absent for rows held without it.
TEST(HeldReleaseStoreTest, KeepsTheLocalEvidenceOfWhatAReleaseWasComputedFrom) {
  const std::string dir = testing::MakeTempDir("held");
  {
    auto store =
        HeldReleaseStore::Open(dir + "/held.db", HeldReleaseStore::OpenMode::kCreateIfMissing);
    ASSERT_TRUE(store.ok()) << store.status();
    HeldRelease with = Row("r1", "aa");
    with.request_bytes = std::string("\x0a\x02r1\x00", 5);
    with.evaluation_sha256 = std::string(64, 'e');
    ASSERT_TRUE((*store)->Hold(with).ok());
    ASSERT_TRUE((*store)->Hold(Row("r2", "bb")).ok());
  }
  auto store = HeldReleaseStore::Open(dir + "/held.db", HeldReleaseStore::OpenMode::kMustExist);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::optional<HeldRelease>> one = (*store)->Get(1);
  ASSERT_TRUE(one.ok() && one->has_value());
  EXPECT_EQ((*one)->request_bytes, std::string("\x0a\x02r1\x00", 5));
  EXPECT_EQ((*one)->evaluation_sha256, std::string(64, 'e'));
  absl::StatusOr<std::optional<HeldRelease>> two = (*store)->Get(2);
  ASSERT_TRUE(two.ok() && two->has_value());
  EXPECT_TRUE((*two)->evaluation_sha256.empty());
  ASSERT_TRUE((*store)->MarkApproved(1).ok());
  absl::StatusOr<std::vector<HeldRelease>> all = (*store)->List();
  ASSERT_TRUE(all.ok() && all->size() == 2u);
  EXPECT_EQ((*all)[0].state, HeldState::kApproved);
  EXPECT_EQ((*all)[0].evaluation_sha256, std::string(64, 'e'));
}

TEST(HeldReleaseStoreTest, RefusesAFileThatIsNotAHeldReleaseStore) {
  const std::string dir = testing::MakeTempDir("held");
  EXPECT_FALSE(
      HeldReleaseStore::Open(dir + "/absent.db", HeldReleaseStore::OpenMode::kMustExist).ok());
  const std::string other = dir + "/other.db";
  {
    std::FILE* f = std::fopen(other.c_str(), "wb");
    std::fputs("not sqlite at all, just text that is long enough to be a header......", f);
    std::fclose(f);
  }
  absl::StatusOr<std::unique_ptr<HeldReleaseStore>> s =
      HeldReleaseStore::Open(other, HeldReleaseStore::OpenMode::kCreateIfMissing);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(other), std::string::npos) << s.status();
}

}  // namespace
}  // namespace fedface::partner
