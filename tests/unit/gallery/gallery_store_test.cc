#include "partner_node/gallery/gallery_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "core/common/sha256.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/gallery/sqlite_gallery_store.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/test_env.h"
#include "tests/unit/gallery/gallery_test_util.h"

namespace fedface::partner {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testutil::Enrolled;
using testutil::Failed;
using testutil::MakeEmbedding;
using testutil::QueryInt;

// The store's behaviour, run against BOTH implementations (a real throw-away PostgreSQL cluster,
// tests/support/postgres_cluster.h; never a mock). Direct SQL checks use statements both
// dialects read the same way.
class GalleryStoreFixture : public ::testing::Test {
 protected:
  explicit GalleryStoreFixture(GalleryStoreKind kind) : kind_(kind) {}

  void SetUp() override {
    dir_ = testing::MakeTempDir("gallery");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/gallery.db";
    if (kind_ == GalleryStoreKind::kPostgresql) {
      testing::OpenFreshDatabase("gallery_", &cluster_, &database_);
      if (IsSkipped() || HasFatalFailure()) return;
    }
    Reopen();
  }

  GalleryStoreSpec Spec() const {
    if (kind_ == GalleryStoreKind::kSqlite) return SqliteGallerySpec(path_);
    GalleryStoreSpec spec;
    spec.kind = GalleryStoreKind::kPostgresql;
    spec.postgresql_conninfo = cluster_->Conninfo(database_);
    return spec;
  }

  void Reopen() {
    store_.reset();
    auto store = OpenGalleryStore(Spec());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // The first column of the first row of `sql`, through a separate connection.
  int64_t Query(const std::string& sql) {
    if (kind_ == GalleryStoreKind::kSqlite) return QueryInt(path_, sql);
    auto out = cluster_->Psql(database_, sql);
    EXPECT_TRUE(out.ok()) << out.status();
    int64_t value = -1;
    EXPECT_TRUE(out.ok() && absl::SimpleAtoi(*out, &value)) << sql;
    return value;
  }

  // The stored bytes of the only embedding, as upper-case hex.
  std::string VectorHex() {
    if (kind_ == GalleryStoreKind::kSqlite) {
      return testutil::QueryText(path_, "SELECT hex(vector) FROM embeddings");
    }
    auto out = cluster_->Psql(database_, "SELECT upper(encode(vector, 'hex')) FROM embeddings");
    EXPECT_TRUE(out.ok()) << out.status();
    return out.value_or("");
  }

  GalleryChange Commit(const std::vector<ImageOutcome>& batch) {
    auto change = store_->CommitBatch(batch);
    EXPECT_TRUE(change.ok()) << change.status();
    return change.ok() ? *change : GalleryChange{};
  }

  const GalleryStoreKind kind_;
  std::string dir_;
  std::string path_;
  std::string database_;
  std::unique_ptr<GalleryStore> store_;
  testing::PostgresCluster* cluster_ = nullptr;  // shared by the test process
};

class GalleryStoreTest : public GalleryStoreFixture,
                         public ::testing::WithParamInterface<GalleryStoreKind> {
 protected:
  GalleryStoreTest() : GalleryStoreFixture(GetParam()) {}
};

INSTANTIATE_TEST_SUITE_P(Stores, GalleryStoreTest,
                         ::testing::Values(GalleryStoreKind::kSqlite,
                                           GalleryStoreKind::kPostgresql),
                         [](const ::testing::TestParamInfo<GalleryStoreKind>& info) {
                           return info.param == GalleryStoreKind::kSqlite ? "Sqlite" : "Postgresql";
                         });

// What only the SQLite file format has (its pragmas, a truncated file).
class SqliteGalleryStoreTest : public GalleryStoreFixture {
 protected:
  SqliteGalleryStoreTest() : GalleryStoreFixture(GalleryStoreKind::kSqlite) {}
};

TEST_P(GalleryStoreTest, CommitsABatchAndReadsItBackAfterReopen) {
  const GalleryChange change = Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 1),
                                       Enrolled("alice", "alice/2.jpg", "a2", "m1", 2, 2),
                                       Enrolled("bob", "bob/1.jpg", "b1", "m1", 1, 3)});
  ASSERT_EQ(change.added.size(), 4u);
  EXPECT_TRUE(change.removed_embedding_ids.empty());
  EXPECT_EQ(change.added[1].subject, "alice");
  EXPECT_EQ(change.added[2].face_index, 1);
  EXPECT_EQ(change.added[2].embedding, MakeEmbedding(2, 1));

  Reopen();
  auto embeddings = store_->Embeddings("m1");
  ASSERT_TRUE(embeddings.ok()) << embeddings.status();
  ASSERT_EQ(embeddings->size(), 4u);
  for (size_t i = 0; i < embeddings->size(); ++i) {
    EXPECT_EQ((*embeddings)[i].id, change.added[i].id);
    EXPECT_EQ((*embeddings)[i].subject, change.added[i].subject);
    EXPECT_EQ((*embeddings)[i].image_id, change.added[i].image_id);
    EXPECT_EQ((*embeddings)[i].embedding, change.added[i].embedding);
    EXPECT_EQ((*embeddings)[i].model_version, "m1");
  }
  auto subjects = store_->Subjects();
  ASSERT_TRUE(subjects.ok());
  ASSERT_EQ(subjects->size(), 2u);
  EXPECT_EQ((*subjects)[0].name, "alice");
  EXPECT_EQ((*subjects)[0].enrolled_images, 2);
  auto counts = store_->Counts("m1");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->subjects, 2);
  EXPECT_EQ(counts->enrolled_images, 3);
  EXPECT_EQ(counts->embeddings, 4);
  EXPECT_EQ(counts->failed_images, 0);
  EXPECT_EQ(counts->stale_images, 0);
  auto bob = store_->SubjectEmbeddings("bob", "m1");
  ASSERT_TRUE(bob.ok());
  ASSERT_EQ(bob->size(), 1u);
  EXPECT_EQ((*bob)[0].embedding, MakeEmbedding(3));
  EXPECT_TRUE(store_->SubjectEmbeddings("carol", "m1")->empty());
}

TEST_P(GalleryStoreTest, StoresEmbeddingsAsExactFloat32Bytes) {
  const Embedding e = MakeEmbedding(77);
  Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 77)});
  store_.reset();
  std::string expected(sizeof(Embedding), '\0');
  std::memcpy(expected.data(), e.data(), expected.size());
  EXPECT_EQ(Query("SELECT length(vector) FROM embeddings"), 512);
  EXPECT_EQ(VectorHex(), [&] {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string hex;
    for (unsigned char c : expected) {
      hex.push_back(kHex[c >> 4]);
      hex.push_back(kHex[c & 15]);
    }
    return hex;
  }());
}

TEST_P(GalleryStoreTest, ChangedFileReplacesTheOldRowOfItsPath) {
  const GalleryChange first = Commit({Enrolled("alice", "alice/1.jpg", "old bytes", "m1", 2, 1)});
  ASSERT_EQ(first.added.size(), 2u);
  const GalleryChange second = Commit({Enrolled("alice", "alice/1.jpg", "new bytes", "m1", 1, 2)});
  ASSERT_EQ(second.added.size(), 1u);
  EXPECT_THAT(second.removed_embedding_ids, ElementsAre(first.added[0].id, first.added[1].id));
  EXPECT_FALSE(*store_->IsCurrentFile("alice/1.jpg", Sha256Hex("old bytes"), "m1"));
  EXPECT_TRUE(*store_->IsCurrentFile("alice/1.jpg", Sha256Hex("new bytes"), "m1"));
  EXPECT_EQ(Query("SELECT count(*) FROM images"), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM embeddings"), 1);
  auto all = store_->Embeddings("m1");
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].embedding, MakeEmbedding(2));
}

TEST_P(GalleryStoreTest, RecommittingTheSameOutcomesCreatesNoDuplicates) {
  const std::vector<ImageOutcome> batch = {Enrolled("alice", "alice/1.jpg", "a1", "m1", 2, 1),
                                           Enrolled("bob", "bob/1.jpg", "b1", "m1", 1, 2)};
  const GalleryChange first = Commit(batch);
  const GalleryChange again = Commit(batch);
  EXPECT_EQ(again.removed_embedding_ids.size(), first.added.size());
  EXPECT_EQ(Query("SELECT count(*) FROM subjects"), 2);
  EXPECT_EQ(Query("SELECT count(*) FROM images"), 2);
  EXPECT_EQ(Query("SELECT count(*) FROM embeddings"), 3);
}

TEST_P(GalleryStoreTest, AnImageRepeatedWithinABatchLeavesOneRowAndAConsistentChange) {
  const GalleryChange change = Commit({Enrolled("alice", "alice/1.jpg", "v1", "m1", 1, 1),
                                       Enrolled("alice", "alice/1.jpg", "v2", "m1", 1, 2)});
  ASSERT_EQ(change.added.size(), 1u);
  EXPECT_TRUE(change.removed_embedding_ids.empty());
  EXPECT_EQ(change.added[0].embedding, MakeEmbedding(2));
  EXPECT_EQ(Query("SELECT count(*) FROM embeddings"), 1);
}

TEST_P(GalleryStoreTest, LocalApiEnrolmentsUpsertByContentWithinTheSubject) {
  ImageOutcome upload = Enrolled("carol", "", "c1", "m1", 1, 5);
  upload.relative_path.reset();
  Commit({upload});
  Commit({upload});
  ImageOutcome other_subject = upload;
  other_subject.subject = "dave";
  Commit({other_subject});
  EXPECT_EQ(Query("SELECT count(*) FROM images"), 2);
  EXPECT_EQ(Query("SELECT count(*) FROM images WHERE relative_path IS NULL"), 2);
  EXPECT_EQ(store_->SubjectEmbeddings("carol", "m1")->size(), 1u);
}

TEST_P(GalleryStoreTest, RecordsFailuresToEnrolWithTheirReasons) {
  Commit({Failed("alice", "alice/blurry.jpg", "x", "m1", "no face found"),
          Failed("bob", "bob/broken.png", "y", "m1", "cannot decode image"),
          Enrolled("bob", "bob/1.jpg", "b1", "m1")});
  auto failures = store_->Failures("m1");
  ASSERT_TRUE(failures.ok());
  ASSERT_EQ(failures->size(), 2u);
  EXPECT_EQ((*failures)[0].subject, "alice");
  EXPECT_EQ((*failures)[0].relative_path, "alice/blurry.jpg");
  EXPECT_EQ((*failures)[0].failure_reason, "no face found");
  EXPECT_EQ((*failures)[0].status, ImageStatus::kFailed);
  EXPECT_EQ((*failures)[1].failure_reason, "cannot decode image");
  auto counts = store_->Counts("m1");
  EXPECT_EQ(counts->failed_images, 2);
  EXPECT_EQ(counts->enrolled_images, 1);
  // A failure is current too: the same content under the same model is not retried.
  EXPECT_TRUE(*store_->IsCurrentFile("alice/blurry.jpg", Sha256Hex("x"), "m1"));

  // The file is replaced by one that enrols: the failure is gone.
  Commit({Enrolled("alice", "alice/blurry.jpg", "sharp", "m1")});
  EXPECT_EQ(store_->Failures("m1")->size(), 1u);
}

TEST_P(GalleryStoreTest, ModelChangeMakesEveryImageNeedReembedding) {
  Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 1),
          Enrolled("alice", "alice/2.jpg", "a2", "m1", 1, 2),
          Failed("bob", "bob/1.jpg", "b1", "m1", "no face found")});
  EXPECT_TRUE(*store_->IsCurrentFile("alice/1.jpg", Sha256Hex("a1"), "m1"));
  EXPECT_FALSE(*store_->IsCurrentFile("alice/1.jpg", Sha256Hex("a1"), "m2"));
  auto stale = store_->StaleImages("m2");
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 3u);  // failures are retried under a new model as well
  EXPECT_TRUE(store_->StaleImages("m1")->empty());
  EXPECT_EQ(store_->Counts("m2")->stale_images, 3);

  // Re-embed one image with the new model: it leaves the stale list and m1's embeddings.
  const GalleryChange change = Commit({Enrolled("alice", "alice/1.jpg", "a1", "m2", 1, 11)});
  EXPECT_EQ(change.removed_embedding_ids.size(), 1u);
  EXPECT_EQ(store_->StaleImages("m2")->size(), 2u);
  EXPECT_TRUE(*store_->IsCurrentFile("alice/1.jpg", Sha256Hex("a1"), "m2"));
  auto m2 = store_->Embeddings("m2");
  ASSERT_EQ(m2->size(), 1u);
  EXPECT_EQ((*m2)[0].embedding, MakeEmbedding(11));
  EXPECT_EQ(store_->Embeddings("m1")->size(), 1u);
  auto counts = store_->Counts("m2");
  EXPECT_EQ(counts->enrolled_images, 1);
  EXPECT_EQ(counts->embeddings, 1);
  EXPECT_EQ(counts->stale_images, 2);
}

TEST_P(GalleryStoreTest, RejectsAMalformedBatchAndWritesNothingOfIt) {
  ImageOutcome no_faces = Enrolled("bob", "bob/1.jpg", "b1", "m1");
  no_faces.faces.clear();
  ImageOutcome bad_hash = Enrolled("bob", "bob/2.jpg", "b2", "m1");
  bad_hash.content_sha256 = "abc";
  ImageOutcome nan = Enrolled("bob", "bob/3.jpg", "b3", "m1");
  nan.faces[0][7] = std::nanf("");
  ImageOutcome failed_with_faces = Failed("bob", "bob/4.jpg", "b4", "m1", "why");
  failed_with_faces.faces.push_back(MakeEmbedding(1));
  ImageOutcome no_subject = Enrolled("", "x/1.jpg", "x1", "m1");
  ImageOutcome no_model = Enrolled("bob", "bob/5.jpg", "b5", "");
  for (const ImageOutcome& bad :
       {no_faces, bad_hash, nan, failed_with_faces, no_subject, no_model}) {
    auto change = store_->CommitBatch({Enrolled("alice", "alice/1.jpg", "a1", "m1"), bad});
    EXPECT_EQ(change.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(change.status().message()), HasSubstr("batch item 1"));
  }
  EXPECT_EQ(Query("SELECT count(*) FROM images"), 0);
  EXPECT_EQ(Query("SELECT count(*) FROM subjects"), 0);
}

TEST_P(GalleryStoreTest, DeleteSubjectRemovesItsImagesAndEmbeddings) {
  const GalleryChange added = Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 2, 1),
                                      Failed("alice", "alice/2.jpg", "a2", "m1", "no face"),
                                      Enrolled("bob", "bob/1.jpg", "b1", "m1", 1, 2)});
  auto removed = store_->DeleteSubject("alice");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(removed->removed_embedding_ids, ElementsAre(added.added[0].id, added.added[1].id));
  EXPECT_EQ(Query("SELECT count(*) FROM subjects"), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM images"), 1);
  EXPECT_EQ(Query("SELECT count(*) FROM embeddings"), 1);
  EXPECT_EQ(store_->DeleteSubject("alice").status().code(), absl::StatusCode::kNotFound);

  // Ids are never reused, so an index following the store cannot confuse old and new rows.
  const GalleryChange again = Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 1)});
  ASSERT_EQ(again.added.size(), 1u);
  EXPECT_GT(again.added[0].id, added.added[2].id);
}

TEST_P(GalleryStoreTest, RemoveFilesForgetsFilesThatLeftTheGallery) {
  Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 1, 1),
          Enrolled("alice", "alice/2.jpg", "a2", "m1", 1, 2),
          Enrolled("bob", "bob/1.jpg", "b1", "m1", 1, 3)});
  EXPECT_THAT(*store_->FilePaths(), ElementsAre("alice/1.jpg", "alice/2.jpg", "bob/1.jpg"));
  auto change = store_->RemoveFiles({"alice/2.jpg", "nobody/9.jpg"});
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->removed_embedding_ids.size(), 1u);
  EXPECT_THAT(*store_->FilePaths(), ElementsAre("alice/1.jpg", "bob/1.jpg"));
}

TEST_F(SqliteGalleryStoreTest, RefusesAFileThatIsNotAGalleryStore) {
  store_.reset();
  const std::string other = dir_ + "/other.db";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(db, "CREATE TABLE ledger_entries (seq INTEGER)", nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenGalleryStore(SqliteGallerySpec(other));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("not a gallery store"));

  const std::string garbage = dir_ + "/garbage.db";
  std::ofstream(garbage) << std::string(9000, 'z');
  EXPECT_FALSE(OpenGalleryStore(SqliteGallerySpec(garbage)).ok());
}

TEST_F(SqliteGalleryStoreTest, RefusesAnotherSchemaVersion) {
  store_.reset();
  ASSERT_EQ(Query("PRAGMA user_version"), kGallerySchemaVersion);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 9", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto store = OpenGalleryStore(SqliteGallerySpec(path_));
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("schema version 9"));
}

TEST_F(SqliteGalleryStoreTest, ReportsATruncatedFileAsAnErrorNotACrash) {
  std::vector<ImageOutcome> batch;
  for (int i = 0; i < 300; ++i) {
    batch.push_back(Enrolled("s" + std::to_string(i % 20), "p/" + std::to_string(i) + ".jpg",
                             "c" + std::to_string(i), "m1", 1, i));
  }
  Commit(batch);
  store_.reset();  // the last connection checkpoints the WAL into the file
  const auto size = std::filesystem::file_size(path_);
  ASSERT_GT(size, 64u * 1024);
  std::filesystem::resize_file(path_, size / 2);
  auto store = OpenGalleryStore(SqliteGallerySpec(path_));
  if (!store.ok()) {
    EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
    return;
  }
  // Opened: reading what the truncation destroyed must fail with a status naming the file.
  auto embeddings = (*store)->Embeddings("m1");
  ASSERT_FALSE(embeddings.ok() && embeddings->size() == 300) << "truncation went unnoticed";
  if (!embeddings.ok()) {
    EXPECT_THAT(std::string(embeddings.status().message()), HasSubstr(path_));
  }
}

TEST_P(GalleryStoreTest, ForEachEmbeddingStopsAtTheCallersError) {
  Commit({Enrolled("alice", "alice/1.jpg", "a1", "m1", 3, 1)});
  int seen = 0;
  absl::Status s = store_->ForEachEmbedding("m1", [&seen](const StoredEmbedding&) {
    return ++seen == 2 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(seen, 2);
}

// Not a limit (nothing here asserts a time): the per-batch store time docs/scaling.md quotes,
// 50 batches of 32 one-face images, printed as a figure.
TEST_P(GalleryStoreTest, ReportsTheTimeOfOneCommittedBatch) {
  constexpr int kBatches = 50;
  constexpr int kBatchImages = 32;
  std::vector<double> millis;
  for (int b = 0; b < kBatches; ++b) {
    std::vector<ImageOutcome> batch;
    for (int i = 0; i < kBatchImages; ++i) {
      const std::string n = std::to_string(b * kBatchImages + i);
      batch.push_back(Enrolled("s" + std::to_string(i % 7), "s/" + n + ".jpg", n, "m1", 1,
                               b * kBatchImages + i));
    }
    const absl::Time start = absl::Now();
    ASSERT_TRUE(store_->CommitBatch(batch).ok());
    millis.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  std::sort(millis.begin(), millis.end());
  std::cout << "[ figures  ] " << (kind_ == GalleryStoreKind::kSqlite ? "sqlite" : "postgresql")
            << " CommitBatch of " << kBatchImages << " images: median " << millis[kBatches / 2]
            << " ms, p90 " << millis[kBatches * 9 / 10] << " ms (" << kBatches << " batches)"
            << std::endl;
  EXPECT_EQ(store_->Counts("m1")->enrolled_images, kBatches * kBatchImages);
  // Storage per image, tables and indexes together (docs/scaling.md's storage arithmetic).
  const double bytes =
      kind_ == GalleryStoreKind::kSqlite
          ? static_cast<double>(Query("SELECT page_count * page_size FROM pragma_page_count(), "
                                      "pragma_page_size()"))
          : static_cast<double>(Query(
                "SELECT sum(pg_total_relation_size(c))::bigint FROM unnest(ARRAY['subjects', "
                "'images', 'embeddings', 'enrolment_batches', 'enrolment_pool']::regclass[]) c"));
  std::cout << "[ figures  ] " << (kind_ == GalleryStoreKind::kSqlite ? "sqlite" : "postgresql")
            << " storage: " << bytes / (kBatches * kBatchImages) << " bytes per one-face image"
            << std::endl;
}

}  // namespace
}  // namespace fedface::partner
