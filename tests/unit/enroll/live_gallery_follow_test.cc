// A serving process's follower on a PostgreSQL gallery whose change log is pruned: a live one
// behind keeps the rows it needs; one silent past the retention finds its rows gone, reloads its
// index from the store and ends with exactly what the store holds. Against a real throw-away
// cluster (tests/support/postgres_cluster.h). The follower thread is set never to wake during a
// test (a 10 min interval): each step is LiveGallery::CatchUpNow, at the point the test chooses.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "partner_node/enroll/live_gallery.h"
#include "tests/support/postgres_database_test.h"
#include "tests/unit/gallery/gallery_test_util.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;
using testutil::Enrolled;
using testutil::MakeEmbedding;

constexpr absl::Duration kNeverDuringATest = absl::Minutes(10);

class LiveGalleryFollowTest : public testing::PostgresDatabaseTest {
 protected:
  void SetUp() override {
    PostgresDatabaseTest::SetUp();
    spec_.kind = GalleryStoreKind::kPostgresql;
    spec_.postgresql_conninfo = cluster_ ? cluster_->Conninfo(database_) : "";
  }

  std::string Sql(const std::string& sql) { return cluster_->Psql(database_, sql).value_or("?"); }

  // The follower `live` falls silent past the retention (24 h by default).
  void Silence(const LiveGallery& live) {
    ASSERT_NE(Sql("UPDATE gallery_followers SET seen_at = now() - interval '2 days' WHERE "
                  "follower = '" +
                  live.follower() + "' RETURNING 1"),
              "");
  }

  static std::set<int64_t> StoreIds(const GalleryStore& store) {
    std::set<int64_t> ids;
    EXPECT_TRUE(store
                    .ForEachEmbedding("m1",
                                      [&ids](const StoredEmbedding& e) {
                                        ids.insert(e.id);
                                        return absl::OkStatus();
                                      })
                    .ok());
    return ids;
  }

  static std::set<int64_t> IndexIds(LiveGallery& live) {
    const std::vector<int64_t> ids = live.index().Ids();
    return std::set<int64_t>(ids.begin(), ids.end());
  }

  GalleryStoreSpec spec_;
};

TEST_F(LiveGalleryFollowTest, AFollowerWhoseChangesWerePrunedReloadsToExactlyTheStore) {
  auto writer = OpenGalleryStore(spec_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)
                  ->CommitBatch({Enrolled("amy", "amy/1.jpg", "a1", "m1", 2, 1),
                                 Enrolled("bob", "bob/1.jpg", "b1", "m1", 1, 2),
                                 Enrolled("carol", "carol/1.jpg", "c1", "m1", 1, 3)})
                  .ok());
  auto live = LiveGallery::Open(spec_, "m1", {}, kNeverDuringATest);
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_FALSE((*live)->follower().empty());
  EXPECT_EQ((*live)->index().size(), 4);
  EXPECT_EQ(Sql("SELECT count(*) FROM gallery_followers"), "1");

  // Live but behind: the two changes it has not applied stay, what it had is pruned.
  ASSERT_TRUE((*writer)->CommitBatch({Enrolled("dave", "dave/1.jpg", "d1", "m1", 1, 4)}).ok());
  ASSERT_TRUE((*writer)->DeleteSubject("bob").ok());
  auto prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok()) << prune.status();
  EXPECT_EQ(prune->rows_deleted, 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM gallery_changes"), "2");
  ASSERT_TRUE((*live)->CatchUpNow().ok());
  EXPECT_EQ(IndexIds(**live), StoreIds(**writer));

  // Silent past the retention: forgotten, and the changes it missed pruned away.
  Silence(**live);
  ASSERT_TRUE((*writer)->CommitBatch({Enrolled("erin", "erin/1.jpg", "e1", "m1", 1, 5)}).ok());
  ASSERT_TRUE((*writer)->RemoveFiles({"carol/1.jpg"}).ok());
  ASSERT_TRUE((*writer)->CommitBatch({Enrolled("amy", "amy/1.jpg", "a2", "m1", 1, 6)}).ok());
  prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok()) << prune.status();
  EXPECT_EQ(prune->followers_dropped, 1);
  EXPECT_EQ(Sql("SELECT count(*) FROM gallery_changes"), "0");

  ::testing::internal::CaptureStderr();
  absl::Status step = (*live)->CatchUpNow();
  const std::string said = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(step.ok()) << step;
  EXPECT_THAT(said, HasSubstr("reloading the search index from the store"));
  EXPECT_THAT(said, HasSubstr("gallery.postgresql.change_log_retention_s"));
  EXPECT_EQ(IndexIds(**live), StoreIds(**writer));  // erin and amy's new face in, carol out
  auto found = (*live)->index().Search(MakeEmbedding(5, 0), 1);
  ASSERT_TRUE(found.ok() && !found->empty());
  EXPECT_EQ((*found)[0].subject, "erin");
  // Registered again where it reloaded, and following from there.
  EXPECT_EQ(Sql("SELECT position FROM gallery_followers"),
            std::to_string(*(*writer)->ChangeLogPosition()));
  ASSERT_TRUE((*writer)->CommitBatch({Enrolled("fay", "fay/1.jpg", "f1", "m1", 1, 7)}).ok());
  ASSERT_TRUE((*live)->CatchUpNow().ok());
  EXPECT_EQ(IndexIds(**live), StoreIds(**writer));

  // A clean exit unregisters: nothing is held back for it.
  live->reset();
  EXPECT_EQ(Sql("SELECT count(*) FROM gallery_followers"), "0");
}

// Figures: the change log of a gallery enrolled in batches of 32, before and after a prune, and
// the time a follower that missed all of it takes to reload its index from the store.
TEST_F(LiveGalleryFollowTest, FiguresOfPruningAndOfAFullReload) {
  constexpr int kImages = 20000;
  constexpr int kBatch = 32;
  auto writer = OpenGalleryStore(spec_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  auto live = LiveGallery::Open(spec_, "m1", {}, kNeverDuringATest);
  ASSERT_TRUE(live.ok()) << live.status();
  for (int begin = 0; begin < kImages; begin += kBatch) {
    std::vector<ImageOutcome> batch;
    for (int i = begin; i < begin + kBatch && i < kImages; ++i) {
      const std::string s = "s" + std::to_string(i / 4);
      batch.push_back(
          Enrolled(s, s + "/" + std::to_string(i) + ".jpg", std::to_string(i), "m1", 1, i));
    }
    ASSERT_TRUE((*writer)->CommitBatch(batch).ok());
  }
  const std::string size_sql =
      "SELECT count(*) || ' rows, ' || coalesce(sum(pg_column_size(c.*)), 0) || ' B of rows, ' "
      "|| pg_total_relation_size('gallery_changes') || ' B on disk' FROM gallery_changes c";
  const std::string before = Sql(size_sql);
  Silence(**live);
  auto prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok()) << prune.status();
  EXPECT_EQ(prune->rows_deleted, (kImages + kBatch - 1) / kBatch);
  const std::string pruned = Sql(size_sql);
  ASSERT_NE(Sql("VACUUM gallery_changes"), "?");
  const std::string vacuumed = Sql(size_sql);

  const absl::Time start = absl::Now();
  ::testing::internal::CaptureStderr();
  absl::Status step = (*live)->CatchUpNow();
  (void)::testing::internal::GetCapturedStderr();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  ASSERT_TRUE(step.ok()) << step;
  EXPECT_EQ((*live)->index().size(), kImages);
  EXPECT_EQ(IndexIds(**live), StoreIds(**writer));
  std::printf(
      "[ figures  ] change log of %d images in batches of %d: %s; after the prune: %s; after "
      "VACUUM: %s\n[ figures  ] full reload of %d embeddings into an empty index (%s): %.2f s\n",
      kImages, kBatch, before.c_str(), pruned.c_str(), vacuumed.c_str(), kImages,
      (*live)->index().approximate() ? "inverted file" : "flat", seconds);
}

}  // namespace
}  // namespace fedface::partner
