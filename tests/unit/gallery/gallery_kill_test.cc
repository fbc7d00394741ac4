// kill -9 during enrolment: a child process commits batches and is SIGKILLed at points chosen by
// its reported progress (when a commit begins, or between two); every batch it reported
// committed must survive, no batch may be half there, nothing may be duplicated, and the next
// run resumes where the last one stopped.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/common/sha256.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/support/test_env.h"
#include "tests/unit/gallery/gallery_test_util.h"

namespace fedface::partner {
namespace {

constexpr int kBatches = 120;
constexpr int kBatchSize = 12;
constexpr char kModel[] = "m1";

int FacesOf(int image) { return image % 3 == 0 ? 2 : 1; }
std::string PathOf(int image) {
  return "subject_" + std::to_string(image % 37) + "/img_" + std::to_string(image) + ".jpg";
}
std::string ContentOf(int image) { return "image bytes " + std::to_string(image); }

ImageOutcome OutcomeOf(int image) {
  return testutil::Enrolled("subject_" + std::to_string(image % 37), PathOf(image),
                            ContentOf(image), kModel, FacesOf(image), image);
}

// The child: an enrolment run that skips what is already current (resume) and commits the rest
// batch by batch. It reports on `fd` "begin B" before committing batch B and "done B" only after
// CommitBatch returned, so the parent can kill it at a point chosen by progress, not by a timer.
[[noreturn]] void RunWriter(const std::string& path, int fd) {
  auto store = OpenGalleryStore(SqliteGallerySpec(path));
  if (!store.ok()) _exit(3);
  auto report = [fd](const char* what, int b) {
    const std::string line = std::string(what) + " " + std::to_string(b) + "\n";
    if (write(fd, line.data(), line.size()) < 0) _exit(6);
  };
  for (int b = 0; b < kBatches; ++b) {
    std::vector<ImageOutcome> batch;
    for (int i = b * kBatchSize; i < (b + 1) * kBatchSize; ++i) {
      auto current = (*store)->IsCurrentFile(PathOf(i), Sha256Hex(ContentOf(i)), kModel);
      if (!current.ok()) _exit(4);
      if (!*current) batch.push_back(OutcomeOf(i));
    }
    if (batch.empty()) continue;
    report("begin", b);
    if (!(*store)->CommitBatch(batch).ok()) _exit(5);
    report("done", b);
  }
  _exit(0);
}

// Where the parent kills the child: when it reports the `nth` (1-based) "begin" (as that batch's
// commit starts) or "done" (between two batches). nth == 0: never.
struct KillPoint {
  int nth = 0;
  bool mid_commit = false;
};

struct Outcome {
  bool killed = false;
  std::set<int> reported;  // batches the child said were committed
};

// Starts a writer and reads its progress line by line; SIGKILLs it at `at` unless it finishes
// first.
Outcome RunChild(const std::string& path, KillPoint at) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    RunWriter(path, fds[1]);
  }
  close(fds[1]);
  Outcome out;
  FILE* progress = fdopen(fds[0], "r");
  char what[16];
  int b = 0;
  int begins = 0;
  int dones = 0;
  bool sent_kill = false;
  while (progress && fscanf(progress, "%15s %d", what, &b) == 2) {
    const bool done = std::strcmp(what, "done") == 0;
    if (done) out.reported.insert(b);
    const int nth = done ? ++dones : ++begins;
    if (!sent_kill && at.nth > 0 && nth == at.nth && done != at.mid_commit) {
      kill(pid, SIGKILL);
      sent_kill = true;
    }
  }
  if (progress) fclose(progress);
  int status = 0;
  waitpid(pid, &status, 0);
  out.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  EXPECT_EQ(out.killed, sent_kill) << "writer status " << status;
  EXPECT_TRUE(out.killed || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
      << "writer failed with status " << status;
  return out;
}

// Checks the store file: every batch whole or absent, exact contents, no duplicates, and every
// batch in `must_have` present. Returns the number of batches present.
int CheckStore(const std::string& path, const std::set<int>& must_have) {
  EXPECT_EQ(testutil::QueryText(path, "PRAGMA integrity_check"), "ok");
  auto store = OpenGalleryStore(SqliteGallerySpec(path));
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return -1;
  int present_batches = 0;
  int64_t expected_images = 0;
  int64_t expected_embeddings = 0;
  for (int b = 0; b < kBatches; ++b) {
    int present = 0;
    for (int i = b * kBatchSize; i < (b + 1) * kBatchSize; ++i) {
      auto current = (*store)->IsCurrentFile(PathOf(i), Sha256Hex(ContentOf(i)), kModel);
      EXPECT_TRUE(current.ok());
      if (current.ok() && *current) {
        ++present;
        expected_embeddings += FacesOf(i);
      }
    }
    EXPECT_TRUE(present == 0 || present == kBatchSize)
        << "batch " << b << " is half there: " << present << " of " << kBatchSize;
    if (present == kBatchSize) ++present_batches;
    expected_images += present;
    if (must_have.count(b)) {
      EXPECT_EQ(present, kBatchSize) << "committed batch " << b << " lost";
    }
  }
  EXPECT_EQ(testutil::QueryInt(path, "SELECT count(*) FROM images"), expected_images);
  EXPECT_EQ(testutil::QueryInt(path, "SELECT count(DISTINCT relative_path) FROM images"),
            expected_images);
  EXPECT_EQ(testutil::QueryInt(path, "SELECT count(*) FROM embeddings"), expected_embeddings);
  EXPECT_EQ(testutil::QueryInt(path,
                               "SELECT count(*) FROM (SELECT DISTINCT image_id, "
                               "face_index FROM embeddings)"),
            expected_embeddings);
  // The bytes are the ones written, for every image and face.
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT i.relative_path, e.face_index, e.vector FROM embeddings e "
                               "JOIN images i ON i.id = e.image_id",
                               -1, &stmt, nullptr),
            SQLITE_OK);
  int64_t checked = 0;
  while (stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    const std::string rel = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    const int image = std::stoi(rel.substr(rel.find("img_") + 4));
    const Embedding want = testutil::MakeEmbedding(image, sqlite3_column_int(stmt, 1));
    if (sqlite3_column_bytes(stmt, 2) != static_cast<int>(sizeof(Embedding))) {
      ADD_FAILURE() << rel << ": embedding blob of " << sqlite3_column_bytes(stmt, 2) << " bytes";
      continue;
    }
    EXPECT_EQ(std::memcmp(sqlite3_column_blob(stmt, 2), want.data(), sizeof(Embedding)), 0) << rel;
    ++checked;
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  EXPECT_EQ(checked, expected_embeddings);
  return present_batches;
}

TEST(GalleryKillTest, KillNineLosesNoCommittedBatchAndResumesWithoutDuplicates) {
  const std::string dir = testing::MakeTempDir("gallery-kill");
  const std::string path = dir + "/gallery.db";
  std::mt19937 rng(1234567);
  std::set<int> reported;
  int interrupted_mid_way = 0;
  int killed_as_a_commit_began = 0;
  for (int round = 0; round < 8; ++round) {
    // Kill within the first quarter of what is left, alternating between a kill as a commit
    // begins and one between two commits: every round stops part-way, on any machine.
    const int left = kBatches - static_cast<int>(reported.size());
    const KillPoint at{.nth = 1 + static_cast<int>(rng() % std::max(1, left / 4)),
                       .mid_commit = round % 2 == 0};
    const Outcome out = RunChild(path, at);
    reported.insert(out.reported.begin(), out.reported.end());
    const int present = CheckStore(path, reported);
    SCOPED_TRACE("round " + std::to_string(round));
    if (out.killed && present > 0 && present < kBatches) ++interrupted_mid_way;
    if (out.killed && at.mid_commit) ++killed_as_a_commit_began;
    std::cout << "round " << round << ": " << (out.killed ? "killed" : "finished")
              << " when commit #" << at.nth << (at.mid_commit ? " began; " : " ended; ")
              << out.reported.size() << " batches reported, " << present << "/" << kBatches
              << " present\n";
    if (::testing::Test::HasFailure()) return;
  }
  // Every round was cut part-way, half of them as a commit began.
  EXPECT_EQ(interrupted_mid_way, 8);
  EXPECT_EQ(killed_as_a_commit_began, 4);

  // Resume to the end: everything there exactly once.
  const Outcome last = RunChild(path, KillPoint{});
  EXPECT_FALSE(last.killed);
  EXPECT_EQ(CheckStore(path, reported), kBatches);
  EXPECT_EQ(testutil::QueryInt(path, "SELECT count(*) FROM images"), kBatches * kBatchSize);
  auto store = OpenGalleryStore(SqliteGallerySpec(path));
  ASSERT_TRUE(store.ok());
  auto embeddings = (*store)->Embeddings(kModel);
  ASSERT_TRUE(embeddings.ok());
  // Each image's embeddings are exactly the ones its outcome carried.
  std::set<std::pair<int64_t, int>> seen;
  for (const StoredEmbedding& e : *embeddings) {
    EXPECT_TRUE(seen.insert({e.image_id, e.face_index}).second);
  }
  int64_t faces = 0;
  for (int i = 0; i < kBatches * kBatchSize; ++i) faces += FacesOf(i);
  EXPECT_EQ(static_cast<int64_t>(embeddings->size()), faces);
}

}  // namespace
}  // namespace fedface::partner
