// What only the PostgreSQL gallery store has: the schema version and application check, the clear
// errors (server unreachable, missing privilege, not a gallery), the password rule of the
// connection string, and two connections (two enrolment hosts) committing into one gallery at
// once. Against a real throw-away cluster (tests/support/postgres_cluster.h), never a mock.
#include "partner_node/gallery/postgresql_gallery_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "core/common/sha256.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/test_env.h"
#include "tests/unit/gallery/gallery_test_util.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testutil::Enrolled;

GalleryStoreSpec PostgresSpec(const std::string& conninfo, bool must_exist = false) {
  GalleryStoreSpec spec;
  spec.kind = GalleryStoreKind::kPostgresql;
  spec.postgresql_conninfo = conninfo;
  spec.must_exist = must_exist;
  return spec;
}

class PostgresqlGalleryStoreTest : public testing::PostgresDatabaseTest {
 protected:
  absl::StatusOr<std::unique_ptr<GalleryStore>> Open(bool must_exist = false) {
    return OpenGalleryStore(PostgresSpec(cluster_->Conninfo(database_), must_exist));
  }
};

TEST(GalleryStoreFactoryTest, RefusesAConnectionStringWithAPasswordNamingTheKey) {
  for (const std::string conninfo :
       {"host=/run/postgresql dbname=g user=u password=secret",
        "host=/run/postgresql dbname=g user=u PASSWORD = 'secret'",
        "postgresql://u:secret@db.example/g", "postgres://u:secret@/g?host=/run/postgresql"}) {
    auto store = OpenGalleryStore(PostgresSpec(conninfo));
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << conninfo;
    EXPECT_THAT(std::string(store.status().message()), HasSubstr("gallery.postgresql.conninfo"));
    EXPECT_THAT(std::string(store.status().message()), Not(HasSubstr("secret")));
  }
  EXPECT_TRUE(
      CheckConninfoHasNoPassword("host=/x dbname=g passfile=/etc/fedface/pgpass", "k").ok());
  EXPECT_TRUE(CheckConninfoHasNoPassword("postgresql://u@db.example/g", "k").ok());
}

TEST_F(PostgresqlGalleryStoreTest, CreatesTheSchemaOnceAndReopensIt) {
  auto first = Open();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE((*first)->CommitBatch({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 1)}).ok());
  auto second = Open(/*must_exist=*/true);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->Embeddings("m1")->size(), 1u);
  EXPECT_EQ(*cluster_->Psql(database_,
                            "SELECT value FROM fedface_gallery_meta WHERE key = 'schema_version'"),
            std::to_string(kPostgresqlGallerySchemaVersion));
  // The batch is recorded with the host that committed it: progress visible from any host.
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT sum(images) FROM enrolment_batches"), "1");
}

TEST_F(PostgresqlGalleryStoreTest, AnEmptyDatabaseIsNotFoundWhenTheStoreMustExist) {
  auto store = Open(/*must_exist=*/true);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(database_));
}

TEST_F(PostgresqlGalleryStoreTest, RefusesAnotherSchemaVersion) {
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(cluster_
                  ->Psql(database_,
                         "UPDATE fedface_gallery_meta SET value = '9' WHERE key = 'schema_version'")
                  .ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 9"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(database_));
}

TEST_F(PostgresqlGalleryStoreTest, RefusesADatabaseWhoseTablesAreNotAGallery) {
  ASSERT_TRUE(cluster_->Psql(database_, "CREATE TABLE images (x integer)").ok());
  auto store = Open();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a gallery store"));
}

TEST_F(PostgresqlGalleryStoreTest, AnUnreachableServerIsUnavailableAndNamed) {
  const std::string nowhere = cluster_->dir() + "/no-such-socket-dir";
  auto store = OpenGalleryStore(
      PostgresSpec("host=" + nowhere + " dbname=g user=fedface connect_timeout=5"));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("cannot connect"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(nowhere));
}

TEST_F(PostgresqlGalleryStoreTest, ARoleWithoutPrivilegesIsPermissionDenied) {
  ASSERT_TRUE(cluster_
                  ->Psql("postgres",
                         "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
                         "rolname = 'reader') THEN CREATE ROLE reader LOGIN; "
                         "END IF; END $$")
                  .ok());
  // PostgreSQL 15: only the owner may create in schema public; reader may not make the schema.
  auto store = OpenGalleryStore(PostgresSpec(cluster_->Conninfo(database_, "reader")));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kPermissionDenied) << store.status();
  // Nor read a gallery made by its owner.
  ASSERT_TRUE(Open().ok());
  auto read = OpenGalleryStore(PostgresSpec(cluster_->Conninfo(database_, "reader")));
  EXPECT_EQ(read.status().code(), absl::StatusCode::kPermissionDenied) << read.status();
}

TEST_F(PostgresqlGalleryStoreTest, TwoHostsCommittingTheSameSubjectsAtOnceDuplicateNothing) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a.ok() && b.ok());
  // Both hosts enrol disjoint files of the SAME subjects at once: subjects are created by
  // whichever host is first, the other's unique-key race is retried, nothing is duplicated.
  auto enrol = [](GalleryStore& store, int host) {
    for (int batch = 0; batch < 20; ++batch) {
      std::vector<ImageOutcome> outcomes;
      for (int i = 0; i < 8; ++i) {
        const std::string subject = "s" + std::to_string((batch * 8 + i) % 13);
        const std::string file =
            "h" + std::to_string(host) + "-" + std::to_string(batch) + "-" + std::to_string(i);
        outcomes.push_back(Enrolled(subject, subject + "/" + file + ".jpg", file, "m1", 1,
                                    host * 1000 + batch * 8 + i));
      }
      auto change = store.CommitBatch(outcomes);
      EXPECT_TRUE(change.ok()) << change.status();
    }
  };
  std::thread ta(enrol, std::ref(**a), 1);
  std::thread tb(enrol, std::ref(**b), 2);
  ta.join();
  tb.join();
  auto counts = (*a)->Counts("m1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->subjects, 13);
  EXPECT_EQ(counts->enrolled_images, 2 * 20 * 8);
  EXPECT_EQ(counts->embeddings, 2 * 20 * 8);
  auto embeddings = (*b)->Embeddings("m1");
  ASSERT_TRUE(embeddings.ok()) << embeddings.status();
  std::set<int64_t> ids;
  for (const StoredEmbedding& e : *embeddings) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 2u * 20 * 8);
}

TEST_F(PostgresqlGalleryStoreTest, MigratesAVersionOneGalleryOnOpen) {
  ASSERT_TRUE(Open().ok());
  // A gallery as version 1 left it: no enrolment pool, no change log, no followers.
  ASSERT_TRUE(cluster_
                  ->Psql(database_,
                         "DROP TABLE enrolment_pool; DROP TABLE gallery_changes; DROP TABLE "
                         "gallery_followers; DELETE FROM fedface_gallery_meta WHERE key = "
                         "'changes_pruned_through'; UPDATE fedface_gallery_meta SET value = '1' "
                         "WHERE key = 'schema_version'")
                  .ok());
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(*cluster_->Psql(database_,
                            "SELECT value FROM fedface_gallery_meta WHERE key = 'schema_version'"),
            std::to_string(kPostgresqlGallerySchemaVersion));
  EXPECT_TRUE((*store)->enrolment_pool()->Offer({{"a/1.jpg", std::string(64, 'a')}}, "m1").ok());
  EXPECT_EQ(*(*store)->ChangeLogPosition(), 0);
}

// A server restart cuts the store's connection: the statement that meets the loss fails as
// Unavailable, naming the store, and the next one reconnects; what was committed is there.
TEST_F(PostgresqlGalleryStoreTest, ReconnectsAfterTheServerRestarts) {
  auto store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->CommitBatch({Enrolled("amy", "amy/1.jpg", "a1", "m1")}).ok());
  const int64_t before = *(*store)->ChangeLogPosition();
  ASSERT_TRUE(cluster_->Restart().ok());
  auto lost = (*store)->Counts("m1");
  if (!lost.ok()) {
    EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
    EXPECT_THAT(std::string(lost.status().message()), ::testing::HasSubstr("postgresql gallery"));
  }
  auto counts = (*store)->Counts("m1");
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->embeddings, 1);
  EXPECT_TRUE((*store)->CommitBatch({Enrolled("bob", "bob/1.jpg", "b1", "m1")}).ok());
  auto position = (*store)->ChangeLogPosition();
  ASSERT_TRUE(position.ok()) << position.status();
  // Later, not next: crash recovery skips the sequence's cached values (a gap, never a reuse).
  EXPECT_GT(*position, before);
}

// A serving host follows what other writers change through the change log: what they added
// (still stored) and what they removed, from a position taken before it read the store.
TEST_F(PostgresqlGalleryStoreTest, AFollowerReadsWhatOtherWritersChanged) {
  auto writer = Open();
  auto follower = Open();
  ASSERT_TRUE(writer.ok() && follower.ok());
  auto start = (*follower)->ChangeLogPosition();
  ASSERT_TRUE(start.ok()) << start.status();
  auto none = (*follower)->ChangesAfter(*start);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->position, *start);
  EXPECT_TRUE(none->change.added.empty() && none->change.removed_embedding_ids.empty());

  auto first = (*writer)->CommitBatch(
      {Enrolled("amy", "amy/1.jpg", "a1", "m1", 2, 1), Enrolled("bob", "bob/1.jpg", "b1", "m1")});
  ASSERT_TRUE(first.ok()) << first.status();
  auto feed = (*follower)->ChangesAfter(*start);
  ASSERT_TRUE(feed.ok()) << feed.status();
  EXPECT_GT(feed->position, *start);
  ASSERT_EQ(feed->change.added.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(feed->change.added[i].id, first->added[i].id);
    EXPECT_EQ(feed->change.added[i].subject, first->added[i].subject);
    EXPECT_EQ(feed->change.added[i].embedding, first->added[i].embedding);
  }
  // A changed file (its old embeddings removed) and a deleted subject.
  auto second = (*writer)->CommitBatch({Enrolled("amy", "amy/1.jpg", "a1-new", "m1")});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE((*writer)->DeleteSubject("bob").ok());
  auto next = (*follower)->ChangesAfter(feed->position);
  ASSERT_TRUE(next.ok()) << next.status();
  std::set<int64_t> removed(next->change.removed_embedding_ids.begin(),
                            next->change.removed_embedding_ids.end());
  EXPECT_EQ(removed,
            (std::set<int64_t>{first->added[0].id, first->added[1].id, first->added[2].id}));
  ASSERT_EQ(next->change.added.size(), 1u);
  EXPECT_EQ(next->change.added[0].id, second->added[0].id);
  auto end = (*follower)->ChangesAfter(next->position);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(end->position, next->position);
  EXPECT_EQ(*(*follower)->ChangeLogPosition(), next->position);
}

TEST_F(PostgresqlGalleryStoreTest, HostsClaimDisjointBatchesAndAnExpiredLeaseReturnsToThePool) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a.ok() && b.ok());
  EnrolmentPool* pool_a = (*a)->enrolment_pool();
  EnrolmentPool* pool_b = (*b)->enrolment_pool();
  ASSERT_NE(pool_a, nullptr);
  std::vector<PoolFile> files;
  for (int i = 0; i < 10; ++i) {
    files.push_back({"s/" + std::to_string(i) + ".jpg", Sha256Hex(std::to_string(i))});
  }
  ASSERT_TRUE(pool_a->Offer(files, "m1").ok());
  ASSERT_TRUE(pool_b->Offer(files, "m1").ok());  // offered twice: still once in the pool
  EXPECT_EQ(*pool_a->Remaining("m1"), 10);

  auto first = pool_a->Claim("m1", 4, absl::Hours(1));
  auto second = pool_b->Claim("m1", 4, absl::Milliseconds(1));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(first->size(), 4u);
  ASSERT_EQ(second->size(), 4u);
  std::set<std::string> claimed;
  for (const auto* batch : {&*first, &*second}) {
    for (const PoolFile& f : *batch) claimed.insert(f.relative_path);
  }
  EXPECT_EQ(claimed.size(), 8u);  // disjoint

  // b "dies" with its claim: the 1 ms lease ends and its files are claimable again; a's are not.
  absl::SleepFor(absl::Milliseconds(20));
  auto rest = pool_a->Claim("m1", 10, absl::Hours(1));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 6u);  // the 2 never claimed + b's 4
  for (const PoolFile& f : *first) {
    for (const PoolFile& r : *rest) EXPECT_NE(f.relative_path, r.relative_path);
  }

  // Committing a file removes it from the pool in the same transaction.
  std::vector<ImageOutcome> batch;
  for (const PoolFile& f : *first) {
    ImageOutcome o = Enrolled("s", f.relative_path, "unused", "m1", 1, 1);
    o.content_sha256 = f.content_sha256;
    batch.push_back(o);
  }
  ASSERT_TRUE((*a)->CommitBatch(batch).ok());
  EXPECT_EQ(*pool_a->Remaining("m1"), 6);
  // ... and a file already current is not offered again.
  ASSERT_TRUE(pool_b->Offer(files, "m1").ok());
  EXPECT_EQ(*pool_a->Remaining("m1"), 6);
  auto status = pool_b->Status("m1");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->waiting + status->claimed, 6);
  ASSERT_EQ(status->hosts.size(), 1u);
  EXPECT_EQ(status->hosts[0].images, 4);

  // After a model switch, a file still pooled for the old version is taken over by the new one.
  ASSERT_TRUE(pool_b->Offer({files[9]}, "m2").ok());
  EXPECT_EQ(*pool_b->Remaining("m2"), 1);
  EXPECT_EQ(*pool_b->Remaining("m1"), 5);
}

// Pruning deletes the change-log rows every live follower applied and keeps those a live follower
// behind still needs; a follower silent longer than the retention is forgotten, its rows go, and
// its next read is OutOfRange (it must reload), never a silent gap.
TEST_F(PostgresqlGalleryStoreTest, PruningKeepsWhatALiveFollowerNeedsAndDropsASilentOne) {
  auto writer = Open();
  auto fast = Open();
  auto behind = Open();
  ASSERT_TRUE(writer.ok() && fast.ok() && behind.ok());
  auto start = (*fast)->StartFollowing("fast");
  ASSERT_TRUE(start.ok()) << start.status();
  ASSERT_TRUE((*behind)->StartFollowing("behind").ok());
  for (int i = 0; i < 6; ++i) {
    const std::string s = "s" + std::to_string(i);
    ASSERT_TRUE((*writer)->CommitBatch({Enrolled(s, s + "/1.jpg", s, "m1", 1, i)}).ok());
  }
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM gallery_changes"), "6");
  auto all = (*fast)->ChangesAfter(*start);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_TRUE((*fast)->RecordFollower("fast", all->position).ok());
  // `behind` has applied the first two changes only.
  const int64_t behind_at = std::stoll(
      *cluster_->Psql(database_, "SELECT seq FROM gallery_changes ORDER BY seq OFFSET 1 LIMIT 1"));
  ASSERT_TRUE((*behind)->RecordFollower("behind", behind_at).ok());

  auto prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok()) << prune.status();
  EXPECT_EQ(prune->rows_deleted, 2);
  EXPECT_EQ(prune->pruned_through, behind_at);
  EXPECT_EQ(prune->live_followers, 2);
  EXPECT_EQ(prune->followers_dropped, 0);
  auto rest = (*behind)->ChangesAfter(behind_at);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->change.added.size(), 4u);
  EXPECT_EQ(rest->position, all->position);

  // `behind` falls silent for longer than the retention (24 h by default).
  ASSERT_TRUE(cluster_
                  ->Psql(database_,
                         "UPDATE gallery_followers SET seen_at = now() - interval '2 days' "
                         "WHERE follower = 'behind'")
                  .ok());
  prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok()) << prune.status();
  EXPECT_EQ(prune->rows_deleted, 4);
  EXPECT_EQ(prune->followers_dropped, 1);
  EXPECT_EQ(prune->pruned_through, all->position);
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM gallery_changes"), "0");
  auto gone = (*behind)->ChangesAfter(behind_at);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kOutOfRange) << gone.status();
  EXPECT_THAT(std::string(gone.status().message()),
              HasSubstr("gallery.postgresql.change_log_retention_s"));
  // The live follower reads on; the position of an emptied log is where its pruning ended.
  auto none = (*fast)->ChangesAfter(all->position);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->position, all->position);
  EXPECT_EQ(*(*writer)->ChangeLogPosition(), all->position);
  auto next = (*writer)->CommitBatch({Enrolled("z", "z/1.jpg", "z", "m1")});
  ASSERT_TRUE(next.ok());
  auto later = (*fast)->ChangesAfter(all->position);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->change.added.size(), 1u);
  EXPECT_EQ(later->change.added[0].id, next->added[0].id);

  // A follower that stopped cleanly holds nothing back.
  ASSERT_TRUE((*fast)->ForgetFollower("fast").ok());
  prune = (*writer)->PruneChanges();
  ASSERT_TRUE(prune.ok());
  EXPECT_EQ(prune->live_followers, 0);
  EXPECT_EQ(prune->rows_deleted, 1);
}

// An enrolment host's store (reconnect_within) retries a statement that lost the server until
// the server is back, and gives up after reconnect_within naming the key; nothing half-written.
TEST_F(PostgresqlGalleryStoreTest, AnEnrolmentStoreRetriesAcrossAnOutageThenGivesUpNamingTheKey) {
  GalleryStoreSpec spec = PostgresSpec(cluster_->Conninfo(database_));
  spec.postgresql_reconnect_within = absl::Seconds(2);
  auto store = OpenGalleryStore(spec);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->CommitBatch({Enrolled("amy", "amy/1.jpg", "a1", "m1")}).ok());
  ASSERT_TRUE(cluster_->StopServer().ok());
  auto lost = (*store)->CommitBatch({Enrolled("bob", "bob/1.jpg", "b1", "m1")});
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_THAT(std::string(lost.status().message()),
              HasSubstr("gallery.postgresql.reconnect_timeout_s"));
  ASSERT_TRUE(cluster_->StartServer().ok());
  auto again = (*store)->CommitBatch({Enrolled("bob", "bob/1.jpg", "b1", "m1")});
  ASSERT_TRUE(again.ok()) << again.status();
  auto counts = (*store)->Counts("m1");
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(counts->enrolled_images, 2);
  EXPECT_EQ(counts->embeddings, 2);
}

}  // namespace
}  // namespace fedface::partner
