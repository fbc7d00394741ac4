// `partner_node state backup|restore` between real processes (issue 15): a partner serves two
// rounds, is backed up while serving, its state is destroyed, and the backup is restored into a
// fresh folder where the node starts again with the same gallery, ledger head and budget. A
// damaged backup is refused naming the file, before anything is written.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "partner_node/egress/egress_config.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/privacy_budget.h"
#include "tests/integration/partner_serve/serve_harness.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;

ProcessResult State(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {PartnerNodeBinary(), "state"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

// The figures line `state show|backup|restore` prints (gallery, ledger head, budget).
std::string Figures(const ProcessResult& r) {
  const size_t at = r.out.find("gallery: ");
  return at == std::string::npos ? "" : r.out.substr(at, r.out.find('\n', at) - at);
}

mode_t Mode(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// Every folder of the tree is 0700 and every file 0600 (the backup holds embeddings).
void ExpectPrivate(const fs::path& root) {
  EXPECT_EQ(Mode(root), 0700u) << root;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    EXPECT_EQ(Mode(entry.path()), entry.is_directory() ? 0700u : 0600u) << entry.path();
  }
}

class StateBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ServeFixture& f = GetServeFixture();
    if (!f.skip_reason.empty()) FEDFACE_SKIP_OR_FAIL(f.skip_reason);
    ASSERT_TRUE(f.error.empty()) << f.error;
  }
};

TEST_F(StateBackupTest, BackupWhileServingRestoresGalleryLedgerAndBudgetIntoAFreshFolder) {
  const ServeFixture& f = GetServeFixture();
  const PartnerWorld world = MakePartnerWorld("state-source", PartnerSettings{});
  std::string first_release;
  std::string before;
  const std::string backup = world.dir + "/backup";
  {
    PartnerServer server(world, "source");
    ASSERT_TRUE(server.WaitReady()) << server.log();
    auto vendor = VendorChannel(f.pki, server.vendor_port(), "coordinator");
    const RawReply r1 = CallRaw(vendor, kRunEvaluation, VerificationRequestBytes("r-1"));
    ASSERT_TRUE(r1.status.ok()) << r1.status.error_message();
    first_release = r1.bytes;
    ASSERT_TRUE(CallRaw(vendor, kRunEvaluation, VerificationRequestBytes("r-2")).status.ok());

    const ProcessResult show = State({"show", "--config", world.config});
    ASSERT_EQ(show.exit_code, 0) << show.err;
    before = Figures(show);
    EXPECT_TRUE(absl::StrContains(before, "ledger: 2 entries, head 2 ")) << before;
    EXPECT_TRUE(absl::StrContains(before, "2 of 10 epsilon spent, 8 left")) << before;

    // Online: the node holds every store open while the backup copies them.
    const ProcessResult made = State({"backup", "--config", world.config, "--to", backup});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_EQ(Figures(made), before);
    ASSERT_TRUE(server.WaitReady());

    // A node holding the state: restoring over it is refused, even with --force.
    const ProcessResult busy =
        State({"restore", "--config", world.config, "--from", backup, "--force"});
    EXPECT_EQ(busy.exit_code, 1);
    EXPECT_TRUE(absl::StrContains(busy.err, "open in another process")) << busy.err;
    EXPECT_EQ(server.Stop(), 0);
  }
  ExpectPrivate(backup);
  for (const char* file :
       {"manifest.json", "stores/gallery.db", "stores/egress_ledger.db", "stores/privacy_budget.db",
        "model_cache/active", "config/partner.yaml"}) {
    EXPECT_TRUE(fs::exists(fs::path(backup) / file)) << file;
  }

  // A damaged copy is named and refused before anything is written: the state it would have
  // replaced (--force) is still whole.
  const std::string damaged = world.dir + "/damaged";
  fs::copy(backup, damaged, fs::copy_options::recursive);
  {
    std::fstream db(damaged + "/stores/gallery.db",
                    std::ios::in | std::ios::out | std::ios::binary);
    db.seekp(5000);
    db.put('\x5a');
  }
  const ProcessResult refused =
      State({"restore", "--config", world.config, "--from", damaged, "--force"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, damaged + "/stores/gallery.db: sha256 differs"))
      << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "nothing restored")) << refused.err;
  EXPECT_EQ(Figures(State({"show", "--config", world.config})), before);

  // Destroy the state, then restore into a fresh folder with its own configuration.
  for (const std::string& path :
       {world.ledger, world.budget, world.held, world.dir + "/gallery.db"}) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix);
  }
  const std::string fresh = MakeTempDir("state-restored");
  const std::string fresh_config = fresh + "/partner.yaml";
  WriteText(fresh_config, absl::StrReplaceAll(ReadText(world.config),
                                              {{world.dir, fresh}, {f.cache, fresh + "/cache"}}));
  const ProcessResult restored = State({"restore", "--config", fresh_config, "--from", backup});
  ASSERT_EQ(restored.exit_code, 0) << restored.err;
  EXPECT_TRUE(absl::StrContains(restored.out, "ledger chain verified")) << restored.out;
  EXPECT_EQ(Figures(restored), before);
  for (const char* file : {"gallery.db", "ledger.db", "budget.db", "cache/active"}) {
    EXPECT_EQ(Mode(fs::path(fresh) / file), 0600u) << file;
  }
  const ProcessResult again = State({"restore", "--config", fresh_config, "--from", backup});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(again.err, "refusing to overwrite")) << again.err;

  const ProcessResult verify =
      RunProcess({PartnerNodeBinary(), "ledger", "verify", "--config", fresh_config});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_TRUE(absl::StrContains(verify.out, "ledger OK: 2 entries")) << verify.out;

  // The node starts on the restored state: same figures, a replayed round gets the stored bytes
  // (not fresh noise), and a new round spends from what was left.
  PartnerWorld restored_world = world;
  restored_world.dir = fresh;
  restored_world.config = fresh_config;
  PartnerServer server(restored_world, "restored");
  ASSERT_TRUE(server.WaitReady()) << server.log();
  EXPECT_EQ(Figures(State({"show", "--config", fresh_config})), before);
  auto vendor = VendorChannel(f.pki, server.vendor_port(), "coordinator");
  const RawReply replay = CallRaw(vendor, kRunEvaluation, VerificationRequestBytes("r-1"));
  ASSERT_TRUE(replay.status.ok()) << replay.status.error_message();
  EXPECT_EQ(replay.bytes, first_release);
  ASSERT_TRUE(CallRaw(vendor, kRunEvaluation, VerificationRequestBytes("r-3")).status.ok());
  EXPECT_TRUE(absl::StrContains(Figures(State({"show", "--config", fresh_config})),
                                "3 of 10 epsilon spent, 7 left"));
  EXPECT_EQ(server.Stop(), 0);

  // The backup is now older than the ledger (the replay and r-3 were sent, each an entry):
  // restoring it would give back r-3's budget.
  const ProcessResult rollback =
      State({"restore", "--config", fresh_config, "--from", backup, "--force"});
  EXPECT_EQ(rollback.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(rollback.err, "has 4 entries, the backup 2")) << rollback.err;
  // A backup of the current state replaces it with --force.
  const std::string latest = fresh + "/latest";
  ASSERT_EQ(State({"backup", "--config", fresh_config, "--to", latest}).exit_code, 0);
  const ProcessResult replaced =
      State({"restore", "--config", fresh_config, "--from", latest, "--force"});
  EXPECT_EQ(replaced.exit_code, 0) << replaced.err;
  EXPECT_TRUE(absl::StrContains(Figures(replaced), "3 of 10 epsilon spent")) << replaced.out;
}

// Backups taken while rounds are being answered: each copy's ledger verifies, and every release
// in it is charged in the budget copy (the ledger is copied first), so no restore of it could
// give back budget spent on a recorded release.
TEST_F(StateBackupTest, BackupsDuringRoundsNeverHoldALedgeredReleaseTheBudgetDidNotCharge) {
  const ServeFixture& f = GetServeFixture();
  const PartnerWorld world = MakePartnerWorld("state-busy", PartnerSettings{});
  PartnerServer server(world, "busy");
  ASSERT_TRUE(server.WaitReady()) << server.log();
  auto vendor = VendorChannel(f.pki, server.vendor_port(), "coordinator");
  constexpr int kRounds = 6;
  std::thread rounds([&] {
    for (int r = 0; r < kRounds; ++r) {
      const RawReply reply =
          CallRaw(vendor, kRunEvaluation, VerificationRequestBytes(absl::StrCat("busy-", r)));
      EXPECT_TRUE(reply.status.ok()) << reply.status.error_message();
    }
  });
  std::vector<std::string> backups;
  for (int b = 0; b < 4; ++b) {
    backups.push_back(absl::StrCat(world.dir, "/backup-", b));
    const ProcessResult made = State({"backup", "--config", world.config, "--to", backups.back()});
    EXPECT_EQ(made.exit_code, 0) << made.err;
  }
  rounds.join();
  EXPECT_EQ(server.Stop(), 0);
  for (const std::string& backup : backups) {
    auto ledger = partner::EgressLedger::Open(backup + "/stores/egress_ledger.db",
                                              partner::EgressLedger::OpenMode::kMustExist);
    if (!ledger.ok()) continue;  // taken before the first release: no ledger yet
    absl::StatusOr<partner::LedgerVerification> verdict = (*ledger)->Verify();
    ASSERT_TRUE(verdict.ok() && verdict->ok) << backup;
    absl::StatusOr<std::vector<partner::LedgerEntry>> entries = (*ledger)->Entries();
    ASSERT_TRUE(entries.ok());
    const auto releases = std::count_if(entries->begin(), entries->end(), [](const auto& e) {
      return e.message_type == partner::kEvaluationReleaseType;
    });
    auto budget = partner::PrivacyBudget::Open(backup + "/stores/privacy_budget.db", 10);
    ASSERT_TRUE(budget.ok()) << budget.status();
    absl::StatusOr<double> spent = (*budget)->SpentByAll();
    ASSERT_TRUE(spent.ok());
    std::cout << "[ measured ] " << backup << ": " << releases << " releases ledgered, epsilon "
              << *spent << " charged\n";
    EXPECT_LE(static_cast<double>(releases), *spent) << backup;  // epsilon 1 per release
  }
}

}  // namespace
}  // namespace fedface::testing
