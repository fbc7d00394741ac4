// `partner_node enroll` as a partner runs it: a real process over a copy of the bbt gallery, the
// real signed package in a real model cache, the real SQLite store. Incremental runs, changed and
// removed files, failures to enrol, a model switch, and kill -9 at several points.
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/support/postgres_cluster.h"
#include "tests/support/postgres_database_test.h"
#include "tests/support/test_env.h"
#include "tests/unit/enroll/partner_world.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;

// The figures of the summary line on stdout.
struct Summary {
  bool parsed = false;
  int files = 0, fresh = 0, changed = 0, reembedded = 0, unchanged = 0, removed = 0;
  int enrolled = 0, failed = 0, unreadable = 0, processed = 0;
  double seconds = 0, images_per_second = 0;
  std::string line;
};

Summary ParseSummary(const std::string& out) {
  static const std::regex kLine(
      R"(enroll: model \S+: (\d+) files: (\d+) new, (\d+) changed, (\d+) re-embedded, (\d+) )"
      R"(unchanged, (\d+) removed; (\d+) enrolled, (\d+) failed, (\d+) unreadable; (\d+) images )"
      R"(in ([\d.]+) s, ([\d.]+) images/s)");
  Summary s;
  std::smatch m;
  if (!std::regex_search(out, m, kLine)) return s;
  s.parsed = true;
  s.line = m[0];
  int* fields[] = {&s.files,   &s.fresh,    &s.changed, &s.reembedded, &s.unchanged,
                   &s.removed, &s.enrolled, &s.failed,  &s.unreadable, &s.processed};
  for (int i = 0; i < 10; ++i) *fields[i] = std::stoi(m[i + 1]);
  s.seconds = std::stod(m[11]);
  s.images_per_second = std::stod(m[12]);
  return s;
}

float MaxAbsDifference(const Embedding& a, const Embedding& b) {
  float d = 0;
  for (int i = 0; i < kEmbeddingDim; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// The same content: paths, hashes, statuses, model versions and embeddings (row ids may differ).
void ExpectSameGallery(const std::map<std::string, StoredImage>& got,
                       const std::map<std::string, StoredImage>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [path, w] : want) {
    auto it = got.find(path);
    ASSERT_NE(it, got.end()) << path;
    const StoredImage& g = it->second;
    EXPECT_EQ(g.subject, w.subject) << path;
    EXPECT_EQ(g.content_sha256, w.content_sha256) << path;
    EXPECT_EQ(g.status, w.status) << path;
    EXPECT_EQ(g.model_version, w.model_version) << path;
    ASSERT_EQ(g.embeddings.size(), w.embeddings.size()) << path;
    for (size_t i = 0; i < w.embeddings.size(); ++i) {
      EXPECT_LE(MaxAbsDifference(g.embeddings[i], w.embeddings[i]), 1e-6f) << path;
    }
  }
}

class EnrollCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TestPackageDir().empty()) GTEST_SKIP() << "test package absent; skipping test";
    if (BbtGalleryDir().empty()) GTEST_SKIP() << "faceapi-bbt dataset absent; skipping test";
  }

  // A world whose gallery folder holds `images_per_subject` bbt images per subject.
  PartnerWorld World(const std::string& name, int images_per_subject,
                     const WorldOptions& options = {}) {
    std::string error;
    PartnerWorld w = MakePartnerWorld(name, options, &error);
    EXPECT_FALSE(w.dir.empty()) << error;
    if (w.dir.empty()) return w;
    w.gallery_dir = w.dir + "/gallery";
    EXPECT_TRUE(CopyBbtGallery(w.gallery_dir, images_per_subject));
    return w;
  }

  ProcessResult Enroll(const PartnerWorld& w, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"enroll", "--config", w.config, "--gallery", w.gallery_dir};
    args.insert(args.end(), extra.begin(), extra.end());
    return PartnerNode(args);
  }
};

// The gallery holds embeddings of real faces: whatever umask the operator's shell has, every file
// and folder `partner_node` creates is readable by its owner only.
TEST_F(EnrollCommandTest, CreatesTheGalleryReadableByItsOwnerOnlyWhateverTheUmask) {
  PartnerWorld w = World("enroll-modes", 2);
  ASSERT_FALSE(w.dir.empty());
  const std::string state = w.dir + "/state";
  ASSERT_TRUE(fs::create_directories(state));
  const std::string db = state + "/gallery.db";
  std::string config = ReadText(w.config);
  const std::string key = "db: gallery.db";
  ASSERT_NE(config.find(key), std::string::npos) << config;
  config.replace(config.find(key), key.size(), "db: " + db);
  WriteText(w.config, config);
  const mode_t before = umask(022);  // a permissive caller, as a login shell usually is
  const ProcessResult r = Enroll(w);
  umask(before);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int checked = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(state)) {
    struct stat st {};
    ASSERT_EQ(lstat(e.path().c_str(), &st), 0) << e.path();
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " has mode " << std::oct << (st.st_mode & 0777);
    ++checked;
  }
  EXPECT_GE(checked, 1) << "expected at least gallery.db";
  EXPECT_TRUE(fs::exists(db));
}

TEST_F(EnrollCommandTest, EnrolsEveryBbtImageThenSkipsThemAllOnTheNextRun) {
  PartnerWorld w = World("enroll-all", 5);
  ASSERT_FALSE(w.dir.empty());
  ProcessResult first = Enroll(w);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  Summary s = ParseSummary(first.out);
  ASSERT_TRUE(s.parsed) << first.out;
  EXPECT_EQ(s.files, 40);
  EXPECT_EQ(s.fresh, 40);
  EXPECT_EQ(s.processed, 40);
  EXPECT_EQ(s.enrolled, 40);
  EXPECT_EQ(s.failed, 0);
  EXPECT_GT(s.images_per_second, 0);
  std::cout << "[ figures  ] bbt 40 images, 2 workers: " << s.line << std::endl;

  std::map<std::string, StoredImage> stored = ReadGallery(w.gallery_db);
  ASSERT_EQ(stored.size(), 40u);
  for (const auto& [path, image] : stored) {
    EXPECT_EQ(image.status, "enrolled") << path;
    EXPECT_EQ(image.model_version, "1.0.0") << path;
    EXPECT_EQ(image.embeddings.size(), 1u) << path;
    EXPECT_EQ(path.substr(0, image.subject.size() + 1), image.subject + "/");
    absl::StatusOr<std::string> sha = Sha256HexOfFile(w.gallery_dir + "/" + path);
    ASSERT_TRUE(sha.ok());
    EXPECT_EQ(image.content_sha256, *sha) << path;
  }

  ProcessResult second = Enroll(w);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  Summary again = ParseSummary(second.out);
  ASSERT_TRUE(again.parsed) << second.out;
  EXPECT_EQ(again.unchanged, 40);
  EXPECT_EQ(again.processed, 0);
  std::map<std::string, StoredImage> after = ReadGallery(w.gallery_db);
  for (const auto& [path, image] : stored) EXPECT_EQ(after[path].image_id, image.image_id);
}

TEST_F(EnrollCommandTest, ReplacesAChangedFileAddsANewOneAndRemovesADeletedOne) {
  PartnerWorld w = World("enroll-changes", 2);
  ASSERT_FALSE(w.dir.empty());
  ASSERT_EQ(Enroll(w).exit_code, 0);
  std::map<std::string, StoredImage> before = ReadGallery(w.gallery_db);
  ASSERT_EQ(before.size(), 16u);

  const std::string bbt = BbtGalleryDir();
  fs::copy_file(bbt + "/raj/raj3.png", w.gallery_dir + "/raj/raj1.png",
                fs::copy_options::overwrite_existing);
  fs::remove(w.gallery_dir + "/amy/amy2.png");
  fs::copy_file(bbt + "/penny/penny3.png", w.gallery_dir + "/penny/penny3.png");

  ProcessResult r = Enroll(w);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  ASSERT_TRUE(s.parsed) << r.out;
  EXPECT_EQ(s.changed, 1);
  EXPECT_EQ(s.fresh, 1);
  EXPECT_EQ(s.removed, 1);
  EXPECT_EQ(s.unchanged, 14);
  EXPECT_EQ(s.processed, 2);

  std::map<std::string, StoredImage> after = ReadGallery(w.gallery_db);
  EXPECT_EQ(after.size(), 16u);
  EXPECT_EQ(after.count("amy/amy2.png"), 0u);
  ASSERT_EQ(after.count("penny/penny3.png"), 1u);
  const StoredImage& raj1 = after["raj/raj1.png"];
  EXPECT_EQ(raj1.content_sha256, *Sha256HexOfFile(bbt + "/raj/raj3.png"));
  EXPECT_NE(raj1.image_id, before["raj/raj1.png"].image_id);
  ASSERT_EQ(raj1.embeddings.size(), 1u);
  EXPECT_GT(MaxAbsDifference(raj1.embeddings[0], before["raj/raj1.png"].embeddings[0]), 1e-3f);
  EXPECT_EQ(after["raj/raj2.png"].image_id, before["raj/raj2.png"].image_id);
}

TEST_F(EnrollCommandTest, RefusesToEmptyTheStoreFromAFolderWithoutImages) {
  PartnerWorld w = World("enroll-empty-folder", 1);
  ASSERT_FALSE(w.dir.empty());
  ASSERT_EQ(Enroll(w).exit_code, 0);
  fs::rename(w.gallery_dir, w.dir + "/gallery-away");
  fs::create_directories(w.gallery_dir + "/amy");  // e.g. an unmounted share's mount point
  ProcessResult r = Enroll(w);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no image files, but the store holds 8"), std::string::npos) << r.err;
  EXPECT_EQ(ReadGallery(w.gallery_db).size(), 8u);

  // Removing every file but one is an ordinary change.
  fs::copy_file(w.dir + "/gallery-away/amy/amy1.png", w.gallery_dir + "/amy/amy1.png");
  Summary s = ParseSummary(Enroll(w).out);
  EXPECT_EQ(s.removed, 7);
  EXPECT_EQ(s.unchanged, 1);
  EXPECT_EQ(ReadGallery(w.gallery_db).size(), 1u);
}

TEST_F(EnrollCommandTest, CountsAndListsFailuresToEnrolWithReasons) {
  PartnerWorld w = World("enroll-failures", 1);
  ASSERT_FALSE(w.dir.empty());
  WriteText(w.gallery_dir + "/raj/corrupt.jpg", "\xff\xd8\xff\xe0 definitely not a JPEG");
  cv::Mat blank(240, 320, CV_8UC3, cv::Scalar(90, 140, 200));
  ASSERT_TRUE(cv::imwrite(w.gallery_dir + "/amy/blank.png", blank));
  WriteText(w.gallery_dir + "/amy/notes.txt", "not an image");
  WriteText(w.gallery_dir + "/README.jpg", "not in a subject folder");

  ProcessResult r = Enroll(w);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  ASSERT_TRUE(s.parsed) << r.out;
  EXPECT_EQ(s.files, 10);
  EXPECT_EQ(s.enrolled, 8);
  EXPECT_EQ(s.failed, 2);
  EXPECT_NE(r.err.find("2 failures to enrol; list them with"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not enrolled: amy/notes.txt: not an image file name"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("not enrolled: README.jpg: not in a subject folder"), std::string::npos)
      << r.err;

  ProcessResult listed = PartnerNode({"enroll", "--config", w.config, "--failures"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("2 failures to enrol under model 1.0.0"), std::string::npos)
      << listed.out;
  EXPECT_NE(listed.out.find("amy/blank.png\tno face found"), std::string::npos) << listed.out;
  const size_t corrupt = listed.out.find("raj/corrupt.jpg\t");
  ASSERT_NE(corrupt, std::string::npos) << listed.out;
  EXPECT_GT(listed.out.find('\n', corrupt), corrupt + 18) << "a reason follows the path";

  // A failure is a recorded outcome: the next run skips it, --retry-failures tries again.
  Summary again = ParseSummary(Enroll(w).out);
  EXPECT_EQ(again.processed, 0);
  EXPECT_EQ(again.unchanged, 10);
  Summary retried = ParseSummary(Enroll(w, {"--retry-failures"}).out);
  EXPECT_EQ(retried.processed, 2);
  EXPECT_EQ(retried.failed, 2);
  EXPECT_EQ(ReadGallery(w.gallery_db).size(), 10u);
}

TEST_F(EnrollCommandTest, ReembedsEverythingWhenTheActiveModelChanges) {
  PartnerWorld w = World("enroll-model-switch", 2);
  ASSERT_FALSE(w.dir.empty());
  ASSERT_EQ(Enroll(w).exit_code, 0);
  std::map<std::string, StoredImage> v1 = ReadGallery(w.gallery_db);
  ASSERT_EQ(v1.size(), 16u);

  std::string error;
  ASSERT_TRUE(InstallTestPackage(w.cache_dir, "2.0.0", /*activate=*/true, &error)) << error;
  ProcessResult r = Enroll(w);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Summary s = ParseSummary(r.out);
  ASSERT_TRUE(s.parsed) << r.out;
  EXPECT_EQ(s.reembedded, 16);
  EXPECT_EQ(s.unchanged, 0);
  EXPECT_EQ(s.enrolled, 16);
  std::map<std::string, StoredImage> v2 = ReadGallery(w.gallery_db);
  ASSERT_EQ(v2.size(), 16u);
  for (const auto& [path, image] : v2) {
    EXPECT_EQ(image.model_version, "2.0.0") << path;
    EXPECT_NE(image.image_id, v1[path].image_id) << path;
    ASSERT_EQ(image.embeddings.size(), 1u);
    // 2.0.0 carries the same weights, so the new rows hold the same vectors.
    EXPECT_LE(MaxAbsDifference(image.embeddings[0], v1[path].embeddings[0]), 1e-6f) << path;
  }

  // Rolling back with the real `models activate` re-embeds once more, then nothing.
  ProcessResult back =
      PartnerNode({"models", "activate", "1.0.0", "--allow-downgrade", "--config", w.config});
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(ParseSummary(Enroll(w).out).reembedded, 16);
  EXPECT_EQ(ParseSummary(Enroll(w).out).unchanged, 16);
  for (const auto& [path, image] : ReadGallery(w.gallery_db)) {
    EXPECT_EQ(image.model_version, "1.0.0") << path;
  }
}

TEST_F(EnrollCommandTest, RefusesToRunWithoutAnActiveModel) {
  PartnerWorld w = World("enroll-no-model", 1);
  ASSERT_FALSE(w.dir.empty());
  fs::remove(w.cache_dir + "/active");
  ProcessResult r = Enroll(w);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no active model"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(w.gallery_db));
}

// Kill -9 at several points of one enrolment, resuming each time: what a batch committed before
// a kill is never lost nor redone, nothing is duplicated, and the final store equals a clean run.
TEST_F(EnrollCommandTest, SurvivesKill9AtSeveralPointsAndResumesWithoutLossOrDuplicates) {
  PartnerWorld w = World("enroll-kill", 5, {.commit_batch_images = 4});
  ASSERT_FALSE(w.dir.empty());

  std::map<std::string, StoredImage> committed;  // what survived the kills so far
  int kills_mid_run = 0;
  // Kill points by progress: after the child has committed at least N images (the store is its
  // report), never after a time.
  for (const int kill_at : {1, 4, 13, 26}) {
    ChildProcess child(
        {Env("FEDFACE_PARTNER_NODE"), "enroll", "--config", w.config, "--gallery", w.gallery_dir},
        absl::StrCat(w.dir, "/kill", kill_at, ".out"),
        absl::StrCat(w.dir, "/kill", kill_at, ".err"));
    ASSERT_GT(child.pid(), 0);
    bool killed = false;
    while (child.Running()) {
      size_t rows = 0;
      if (fs::exists(w.gallery_db)) rows = ReadGallery(w.gallery_db).size();
      if (rows >= static_cast<size_t>(kill_at)) {
        child.Kill9();
        killed = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!killed) break;  // the run finished before this point
    EXPECT_EQ(child.Wait(absl::Seconds(60)), 128 + SIGKILL);
    std::map<std::string, StoredImage> now = ReadGallery(w.gallery_db);
    if (now.size() > committed.size() && now.size() < 40) ++kills_mid_run;
    for (const auto& [path, image] : committed) {
      auto it = now.find(path);
      ASSERT_NE(it, now.end()) << "lost after a kill: " << path;
      EXPECT_EQ(it->second.image_id, image.image_id) << "redone after a kill: " << path;
    }
    for (const auto& [path, image] : now) EXPECT_EQ(image.embeddings.size(), 1u) << path;
    committed = std::move(now);
  }
  EXPECT_GE(kills_mid_run, 1) << "no kill landed between two commits";

  ProcessResult resumed = Enroll(w);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  Summary s = ParseSummary(resumed.out);
  ASSERT_TRUE(s.parsed) << resumed.out;
  EXPECT_EQ(s.unchanged, static_cast<int>(committed.size()));
  EXPECT_EQ(s.processed, 40 - static_cast<int>(committed.size()));
  std::map<std::string, StoredImage> final_store = ReadGallery(w.gallery_db);
  for (const auto& [path, image] : committed) {
    EXPECT_EQ(final_store[path].image_id, image.image_id) << path;
  }

  // A clean single run over the same folder in a fresh world.
  std::string error;
  PartnerWorld clean = MakePartnerWorld("enroll-kill-reference", {}, &error);
  ASSERT_FALSE(clean.dir.empty()) << error;
  clean.gallery_dir = w.gallery_dir;
  ASSERT_EQ(Enroll(clean).exit_code, 0);
  ExpectSameGallery(final_store, ReadGallery(clean.gallery_db));
  absl::StatusOr<std::unique_ptr<partner::GalleryStore>> store =
      partner::OpenGalleryStore(partner::SqliteGallerySpec(w.gallery_db));
  ASSERT_TRUE(store.ok());
  absl::StatusOr<partner::GalleryCounts> counts = (*store)->Counts("1.0.0");
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->subjects, 8);
  EXPECT_EQ(counts->enrolled_images, 40);
  EXPECT_EQ(counts->embeddings, 40);
}

// The progress display: a bar redrawn in place on a terminal, plain lines in a log.
TEST_F(EnrollCommandTest, ShowsABarOnATerminalAndPlainLinesOtherwise) {
  PartnerWorld w = World("enroll-progress", 1);
  ASSERT_FALSE(w.dir.empty());
  ProcessResult plain = Enroll(w);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_NE(plain.err.find("enroll: enrolling 8/8 images 100%"), std::string::npos) << plain.err;
  EXPECT_EQ(plain.err.find('\r'), std::string::npos);
  EXPECT_EQ(plain.err.find("\x1b["), std::string::npos);

  fs::remove(w.gallery_db);
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string binary = Env("FEDFACE_PARTNER_NODE");
    execl(binary.c_str(), binary.c_str(), "enroll", "--config", w.config.c_str(), "--gallery",
          w.gallery_dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string terminal;
  char buffer[4096];
  for (ssize_t n; (n = read(master, buffer, sizeof(buffer))) > 0;) terminal.append(buffer, n);
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << terminal;
  EXPECT_NE(terminal.find("\r[##############################] enrolling 8/8 images 100%"),
            std::string::npos)
      << terminal;
  EXPECT_EQ(terminal.find("enroll: enrolling"), std::string::npos) << terminal;
  EXPECT_TRUE(ParseSummary(terminal).parsed) << terminal;
}

// Several enrolment hosts on one PostgreSQL gallery (a throw-away cluster started here, never a
// mock): they share the work through the store's pool and the result is the single-host SQLite
// enrolment of the same folder. Each host runs in its own network namespace when root (the
// cluster has no TCP port; its unix socket is a file, reachable from any namespace).
class SharedEnrolmentTest : public EnrollCommandTest {
 protected:
  void SetUp() override {
    EnrollCommandTest::SetUp();
    if (IsSkipped()) return;
    testing::OpenFreshDatabase("shared_", &cluster_, &database_);
  }

  partner::GalleryStoreSpec Spec(const std::string& database = "") const {
    partner::GalleryStoreSpec spec;
    spec.kind = partner::GalleryStoreKind::kPostgresql;
    spec.postgresql_conninfo = cluster_->Conninfo(database.empty() ? database_ : database);
    return spec;
  }

  // A partner world whose gallery is the cluster's database (default: the test's), enrolled in
  // batches of `batch` files.
  PartnerWorld SharedWorld(const std::string& name, int lease_seconds, int batch = 4,
                           const std::string& database = "") {
    WorldOptions options;
    options.commit_batch_images = batch;
    options.gallery_yaml = absl::StrCat("  store: postgresql\n  postgresql:\n    conninfo: \"",
                                        Spec(database).postgresql_conninfo,
                                        "\"\n    claim_lease_seconds: ", lease_seconds, "\n");
    return World(name, 0, options);
  }

  // `partner_node enroll` of `folder` as one host: in a network namespace of its own when root.
  std::unique_ptr<ChildProcess> StartHost(const PartnerWorld& w, const std::string& folder,
                                          const std::string& name) {
    std::vector<std::string> argv = {
        Env("FEDFACE_PARTNER_NODE"), "enroll", "--config", w.config, "--gallery", folder};
    if (geteuid() == 0) argv.insert(argv.begin(), {"/usr/bin/unshare", "--net", "--"});
    return std::make_unique<ChildProcess>(argv, w.dir + "/" + name + ".out",
                                          w.dir + "/" + name + ".err");
  }

  // `reference`: a single-host SQLite enrolment of 5 bbt images per subject, the gallery every
  // shared enrolment of its folder must equal (returned).
  std::map<std::string, StoredImage> Reference(const std::string& name, PartnerWorld& reference) {
    reference = World(name, 5);
    EXPECT_FALSE(reference.dir.empty());
    EXPECT_EQ(Enroll(reference).exit_code, 0);
    return ReadGallery(reference.gallery_db);
  }

  // A host that stops, holding its next claim, once `after` images are committed, and says so
  // (FEDFACE_TEST_ENROLL_PAUSE_AFTER_IMAGES, enroll_command.cc): returned once it said so, or
  // after it exited (the caller checks Running()).
  std::unique_ptr<ChildProcess> StartPausedHost(const PartnerWorld& w, const std::string& folder,
                                                const std::string& name, int after) {
    ::setenv("FEDFACE_TEST_ENROLL_PAUSE_AFTER_IMAGES", std::to_string(after).c_str(), 1);
    std::unique_ptr<ChildProcess> host = StartHost(w, folder, name);
    ::unsetenv("FEDFACE_TEST_ENROLL_PAUSE_AFTER_IMAGES");
    WaitForLine(*host, w.dir + "/" + name + ".err", "enroll: test pause:");
    return host;
  }

  // Until the host has written `text` to its stderr file `err`, or has exited.
  static void WaitForLine(ChildProcess& host, const std::string& err, const std::string& text) {
    while (host.Running() && ReadText(err).find(text) == std::string::npos) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  PostgresCluster* cluster_ = nullptr;  // shared by the test process
  std::string database_;
};

TEST_F(SharedEnrolmentTest, ThreeHostsEnrolOneGalleryExactlyAsOneSqliteHost) {
  PartnerWorld reference = World("shared-reference", 5);
  ASSERT_FALSE(reference.dir.empty());
  ProcessResult single = Enroll(reference);
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const std::map<std::string, StoredImage> want = ReadGallery(reference.gallery_db);
  ASSERT_EQ(want.size(), 40u);

  PartnerWorld shared = SharedWorld("shared-hosts", 300);
  ASSERT_FALSE(shared.dir.empty());
  std::vector<std::unique_ptr<ChildProcess>> hosts;
  for (int h = 1; h <= 3; ++h) {
    hosts.push_back(StartHost(shared, reference.gallery_dir, "host" + std::to_string(h)));
    ASSERT_GT(hosts.back()->pid(), 0);
  }
  for (size_t h = 0; h < hosts.size(); ++h) {
    EXPECT_EQ(hosts[h]->Wait(absl::Minutes(10)), 0)
        << ReadText(shared.dir + "/host" + std::to_string(h + 1) + ".err");
  }
  RecordCheckMode(geteuid() == 0 ? "3 enrolment hosts, each in its own network namespace"
                                 : "3 enrolment hosts as plain processes");
  ExpectSameGallery(ReadGallery(Spec()), want);

  ProcessResult status = PartnerNode({"enroll", "--config", shared.config, "--status"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("pool: 0 files waiting, 0 claimed"), std::string::npos) << status.out;
  std::cout << "[ figures  ] 3 hosts, 40 bbt images:\n" << status.out << std::endl;
  // Every image was committed exactly once: the batches add up to the gallery.
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT sum(images) FROM enrolment_batches"), "40");
}

TEST_F(SharedEnrolmentTest, AHostKilledMidBatchLosesNothingAndItsClaimReturnsToThePool) {
  PartnerWorld reference;
  const std::map<std::string, StoredImage> want = Reference("shared-kill-reference", reference);
  ASSERT_EQ(want.size(), 40u);

  PartnerWorld shared = SharedWorld("shared-kill", 3);
  ASSERT_FALSE(shared.dir.empty());
  // Kill point reported by the host: it stops, holding its next claim, once 8 images (two
  // batches) are committed.
  std::unique_ptr<ChildProcess> doomed =
      StartPausedHost(shared, reference.gallery_dir, "doomed", 8);
  const std::string doomed_err = shared.dir + "/doomed.err";
  ASSERT_TRUE(doomed->Running()) << ReadText(doomed_err);
  const std::map<std::string, StoredImage> before = ReadGallery(Spec());
  EXPECT_GE(before.size(), 8u);
  // The claim it holds (its lease may run out while it stands still: the row keeps its host).
  EXPECT_EQ(
      *cluster_->Psql(database_, "SELECT count(*) FROM enrolment_pool WHERE host IS NOT NULL"),
      "4");
  doomed->Kill9();
  const std::map<std::string, StoredImage> survived = ReadGallery(Spec());
  ASSERT_GE(survived.size(), before.size());  // every committed batch is still there

  std::unique_ptr<ChildProcess> rescuer = StartHost(shared, reference.gallery_dir, "rescuer");
  EXPECT_EQ(rescuer->Wait(absl::Minutes(10)), 0) << ReadText(shared.dir + "/rescuer.err");
  const std::map<std::string, StoredImage> after = ReadGallery(Spec());
  ExpectSameGallery(after, want);
  // What the killed host committed was kept as it was, not redone.
  for (const auto& [path, image] : survived) EXPECT_EQ(after.at(path).image_id, image.image_id);
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM embeddings"), "40");
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM enrolment_pool"), "0");
}

// The database goes away in the middle of a host's run - stopped at a point the host reports,
// started again once the host says it is reconnecting - and the host reconnects, retries the
// batch it was committing and finishes: the run succeeds and holds every image exactly once.
TEST_F(SharedEnrolmentTest, AHostOutlivesADatabaseRestartMidRun) {
  PartnerWorld reference;
  const std::map<std::string, StoredImage> want = Reference("shared-restart-reference", reference);
  ASSERT_EQ(want.size(), 40u);

  PartnerWorld shared = SharedWorld("shared-restart", 300);
  ASSERT_FALSE(shared.dir.empty());
  std::unique_ptr<ChildProcess> host = StartPausedHost(shared, reference.gallery_dir, "host", 8);
  const std::string err = shared.dir + "/host.err";
  ASSERT_TRUE(host->Running()) << ReadText(err);
  ASSERT_TRUE(cluster_->StopServer().ok());
  host->Signal(SIGUSR1);  // on with its claimed batch, against a server that is gone
  WaitForLine(*host, err, "reconnecting for up to");
  const bool was_waiting = host->Running();
  ASSERT_TRUE(cluster_->StartServer().ok());
  ASSERT_TRUE(was_waiting) << ReadText(err);
  EXPECT_EQ(host->Wait(absl::Minutes(10)), 0) << ReadText(err);
  const std::string said = ReadText(err);
  EXPECT_NE(said.find("gallery.postgresql.reconnect_timeout_s"), std::string::npos) << said;
  EXPECT_NE(said.find(": reconnected"), std::string::npos) << said;

  ExpectSameGallery(ReadGallery(Spec()), want);
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM images"), "40");
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM embeddings"), "40");
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM enrolment_pool"), "0");
  std::cout << "[ figures  ] enrolment across a database stop/start, the host's stderr:\n"
            << said << std::endl;
}

// A host slower than its lease keeps its claim: it renews it while it works (here: stopped at
// its first claim by the test hook), so another host takes every other file but not those; once
// the slow host is killed its renewals stop and the other host finishes its files.
TEST_F(SharedEnrolmentTest, AHostSlowerThanItsLeaseRenewsItsClaim) {
  PartnerWorld reference;
  const std::map<std::string, StoredImage> want = Reference("shared-renew-reference", reference);
  ASSERT_EQ(want.size(), 40u);

  PartnerWorld shared = SharedWorld("shared-renew", 5);
  ASSERT_FALSE(shared.dir.empty());
  std::unique_ptr<ChildProcess> slow = StartPausedHost(shared, reference.gallery_dir, "slow", 0);
  const std::string slow_err = shared.dir + "/slow.err";
  ASSERT_TRUE(slow->Running()) << ReadText(slow_err);
  auto held =
      cluster_->Psql(database_,
                     "SELECT host || '|' || max(lease_until) FROM enrolment_pool WHERE host IS NOT "
                     "NULL GROUP BY host");
  ASSERT_TRUE(held.ok()) << held.status();
  const std::string host = held->substr(0, held->find('|'));
  const std::string first_lease = held->substr(held->find('|') + 1);
  // The lease moves on while the host stands still (a state of the store, waited on).
  const std::string renewed_sql = absl::StrCat("SELECT count(*) FROM enrolment_pool WHERE host = '",
                                               host, "' AND lease_until > '", first_lease, "'");
  // (A hang bound, not a timing: far above a renewal interval.)
  const absl::Time give_up = absl::Now() + absl::Minutes(3);
  for (auto r = cluster_->Psql(database_, renewed_sql); r.ok() && *r != "4";
       r = cluster_->Psql(database_, renewed_sql)) {
    ASSERT_TRUE(slow->Running() && absl::Now() < give_up) << "no renewal";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::unique_ptr<ChildProcess> other = StartHost(shared, reference.gallery_dir, "other");
  const std::string images_sql = "SELECT count(*) FROM images";
  for (auto r = cluster_->Psql(database_, images_sql); r.ok() && *r != "36";
       r = cluster_->Psql(database_, images_sql)) {
    ASSERT_TRUE(other->Running() && absl::Now() < give_up) << ReadText(shared.dir + "/other.err");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // The other host did every file but the slow host's, which are still the slow host's.
  EXPECT_EQ(*cluster_->Psql(database_, absl::StrCat("SELECT count(*) FROM enrolment_pool WHERE "
                                                    "host = '",
                                                    host, "'")),
            "4");
  slow->Kill9();
  EXPECT_EQ(other->Wait(absl::Minutes(10)), 0) << ReadText(shared.dir + "/other.err");
  ExpectSameGallery(ReadGallery(Spec()), want);
  EXPECT_EQ(*cluster_->Psql(database_, "SELECT count(*) FROM enrolment_pool"), "0");
}

// The figures of docs/scaling.md: enrolment photos/s of 1, 2 and 3 hosts on one PostgreSQL
// gallery, and each batch's store time. On this machine every host shares the same 2 cores, so
// more hosts cannot be faster here: the figures show what the shared store costs, not a
// speed-up (printed, never asserted).
TEST_F(SharedEnrolmentTest, ReportsPhotosPerSecondWithOneTwoAndThreeHosts) {
  PartnerWorld photos = World("shared-bench-photos", 5);
  ASSERT_FALSE(photos.dir.empty());
  // 80 photos: the 40 bbt images twice, the copy under other subject names.
  for (const auto& subject : fs::directory_iterator(photos.gallery_dir)) {
    fs::copy(subject.path(), subject.path().string() + "-twin", fs::copy_options::recursive);
  }
  constexpr int kPhotos = 80;
  std::cout << "[ figures  ] enrolment of " << kPhotos
            << " bbt photos on one PostgreSQL gallery, batches of 8, this machine's 2 cores "
               "shared by every host:"
            << std::endl;
  for (int hosts = 1; hosts <= 3; ++hosts) {
    const std::string database = "bench_" + std::to_string(hosts);
    ASSERT_TRUE(cluster_->CreateDatabase(database).ok());
    PartnerWorld w = SharedWorld("shared-bench-" + std::to_string(hosts), 300, 8, database);
    ASSERT_FALSE(w.dir.empty());
    const absl::Time start = absl::Now();
    std::vector<std::unique_ptr<ChildProcess>> running;
    for (int h = 1; h <= hosts; ++h) {
      running.push_back(StartHost(w, photos.gallery_dir, "host" + std::to_string(h)));
    }
    for (auto& host : running) ASSERT_EQ(host->Wait(absl::Minutes(20)), 0);
    const double wall = absl::ToDoubleSeconds(absl::Now() - start);
    double embed_seconds = 0;
    std::vector<double> medians;
    std::string per_host;
    static const std::regex kBatches(R"(enroll: (\d+) batches committed: ([\d.]+) ms median)");
    for (int h = 1; h <= hosts; ++h) {
      const std::string base = w.dir + "/host" + std::to_string(h);
      const Summary summary = ParseSummary(ReadText(base + ".out"));
      ASSERT_TRUE(summary.parsed) << ReadText(base + ".err");
      embed_seconds = std::max(embed_seconds, summary.seconds);
      std::smatch m;
      const std::string err = ReadText(base + ".err");
      if (std::regex_search(err, m, kBatches)) medians.push_back(std::stod(m[2]));
      absl::StrAppend(&per_host, " host", h, " ", summary.processed, " photos");
    }
    EXPECT_EQ(*cluster_->Psql(database, "SELECT sum(images) FROM enrolment_batches"),
              std::to_string(kPhotos));
    std::sort(medians.begin(), medians.end());
    char line[320];
    std::snprintf(line, sizeof(line),
                  "[ figures  ] %d host(s): %.2f photos/s embedding (%.1f s), %.2f photos/s "
                  "wall with model loads (%.1f s);%s; median batch store time %.1f ms",
                  hosts, kPhotos / embed_seconds, embed_seconds, kPhotos / wall, wall,
                  per_host.c_str(), medians.empty() ? 0.0 : medians[medians.size() / 2]);
    std::cout << line << std::endl;
  }
}

}  // namespace
}  // namespace fedface::testing
