// Evaluation rounds between real processes over loopback mutual TLS: `model_vendor round`
// against three (or four) `partner_node serve` processes, each with its own gallery of real
// faces (faceapi-bbt), model cache pulled from a real `model_vendor serve` registry, egress
// guard, ledger and privacy budget.
//
//   - a partner below its k-minimum is reported with the reason; the round completes;
//   - re-running a round id gets every partner's stored release again (DP noise identical:
//     nothing recomputed, nothing charged twice);
//   - a partner whose certificate does not carry the expected name is never asked;
//   - a certificate of another partner at a partner's address is refused, naming both;
//   - a partner killed (SIGKILL) while it is working on the round is reported unreachable after
//     the retries, and the round completes with the quorum of the others;
//   - rounds are listed and shown from the rounds database by later processes.
// The world's logs, reports and screenshots stay under BUILD/test_artifacts/rounds/.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/metrics/release_derivation.h"
#include "tests/integration/rounds/rounds_world.h"
#include "tests/support/test_env.h"
#include "tests/unit/coordinator/report_checks.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ArtefactRoot() {
  const std::string root = Env("FEDFACE_BINARY_DIR") + "/test_artifacts/rounds";
  fs::create_directories(root);
  return root;
}

Json LoadJson(const std::string& path) {
  return Json::parse(ReadText(path), nullptr, /*allow_exceptions=*/false);
}

const Json& PartnerEntry(const Json& report, const std::string& name) {
  for (const Json& p : report["partners"]) {
    if (p["name"] == name) return p;
  }
  static const Json kNone;
  ADD_FAILURE() << "no partner " << name << " in the report";
  return kNone;
}

std::vector<double> Counts(const Json& partner, const char* side) {
  return partner["release"]["histograms"][side]["counts"].get<std::vector<double>>();
}

class RoundsTest : public ::testing::Test {
 protected:
  // The world starts once per process, on the first test, in a folder named after that test
  // (ctest runs each test in its own process, so each keeps its own logs and reports).
  static void StartWorld(const std::string& test_name) {
    if (world_ != nullptr || !skip_.empty()) return;
    if (DatasetsDir().empty()) {
      skip_ = "../shared/datasets is absent";
      return;
    }
    if (TestPackageDir().empty()) {
      skip_ = "the fixture's signed package is absent (scripts/fetch_model.sh)";
      return;
    }
    const std::string dir = ArtefactRoot() + "/" + test_name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    world_ = new RoundsWorld(dir);
    // Every partner runs with the product's floor k = 5 and differential privacy (which no
    // partner can switch off toward a vendor), at a large epsilon (400: noise of scale
    // 4c/400 = 0.1 per bin) so that the histograms of five-subject galleries stay readable. acme
    // and globex: five subjects each, on 1.1.0. initech: on 1.0.0, so a round for 1.1.0 makes it
    // pull the model first (the registry throttles downloads), without activating it, and embed its
    // gallery with it on an evaluation-only engine: it is busy with the round for seconds, and
    // keeps serving 1.0.0 locally. hooli: five more subjects. tiny: two subjects, below k.
    setup_error_ = world_->Start({
        {"acme", {"amy", "bernadette", "howard", "leonard", "penny"}, "1.1.0", 5, 400.0},
        {"globex", {"penny", "raj", "sheldon", "stuart", "amy"}, "1.1.0", 5, 400.0},
        {"initech", {"amy", "penny", "raj", "sheldon", "howard"}, "1.0.0", 5, 400.0},
        {"hooli", {"bernadette", "leonard", "raj", "stuart", "sheldon"}, "1.1.0", 5, 400.0},
        {"tiny", {"howard", "stuart"}, "1.1.0", 5, 400.0},
    });
  }
  static void TearDownTestSuite() {
    delete world_;
    world_ = nullptr;
  }
  void SetUp() override {
    StartWorld(::testing::UnitTest::GetInstance()->current_test_info()->name());
    if (!skip_.empty()) FEDFACE_SKIP_OR_FAIL(skip_);
    ASSERT_EQ(setup_error_, "") << "the test world did not start (logs in " << world_->dir() << ")";
  }

  // Checks the written report files: schema, Chromium render (screenshot kept beside them).
  static void CheckReportFiles(const std::string& out) {
    EXPECT_EQ(vendor::testing::SchemaErrors(out + "/report.json"), "");
    if (!vendor::testing::HaveChromium()) {
      // The render check cannot run: a failure under CI=true, a notice elsewhere.
      if (CiRequiresEveryCheck()) ADD_FAILURE() << "chromium is absent under CI=true";
      std::cout << "[ notice ] chromium is absent: report.html not rendered" << std::endl;
      return;
    }
    const vendor::testing::ChromiumRender r =
        vendor::testing::RenderWithChromium(out + "/report.html", out + "/report.png");
    EXPECT_EQ(r.exit_code, 0) << r.log;
    EXPECT_EQ(r.log.find(":CONSOLE("), std::string::npos) << r.log;
    EXPECT_EQ(r.width, 1200u);
    EXPECT_GT(r.png.size(), 60u * 1024);
  }

  static RoundsWorld* world_;
  static std::string skip_;
  static std::string setup_error_;
};

RoundsWorld* RoundsTest::world_ = nullptr;
std::string RoundsTest::skip_;
std::string RoundsTest::setup_error_;

TEST_F(RoundsTest, APartnerBelowItsKMinimumIsReportedWithTheReasonAndTheRoundCompletes) {
  const std::string config =
      world_->CoordinatorConfig("kmin", {"acme", "globex", "hooli", "tiny"}, 2);
  const std::string out = world_->dir() + "/report-kmin";
  const ProcessResult r =
      world_->Vendor({"round", "--config", config, "--model", "1.1.0", "--protocol", "verification",
                      "--out", out, "--round-id", "kmin-1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("State: complete: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("k-minimum"), std::string::npos) << r.out;

  const Json report = LoadJson(out + "/report.json");
  ASSERT_FALSE(report.is_discarded());
  EXPECT_EQ(report["round"]["state"], "complete");
  EXPECT_EQ(report["round"]["round_id"], "kmin-1");
  const Json& acme = PartnerEntry(report, "acme");
  const Json& globex = PartnerEntry(report, "globex");
  const Json& hooli = PartnerEntry(report, "hooli");
  const Json& tiny = PartnerEntry(report, "tiny");
  // acme's noisy histograms may come out empty on so small a gallery: then it is withheld.
  EXPECT_TRUE(acme["status"] == "contributed" || acme["status"] == "withheld") << acme.dump();
  EXPECT_EQ(globex["status"], "contributed") << globex["reason"];
  EXPECT_EQ(hooli["status"], "contributed") << hooli["reason"];
  EXPECT_EQ(tiny["in_pool"], false);
  // The guard answers a cohort below k with a release that withholds everything.
  EXPECT_EQ(tiny["status"], "withheld") << tiny.dump();
  EXPECT_NE(tiny["reason"].get<std::string>().find("k-minimum"), std::string::npos)
      << tiny["reason"];
  for (const Json& m : tiny["metrics"]) {
    EXPECT_FALSE(m["released"].get<bool>()) << m.dump();
    EXPECT_TRUE(m["suppression"] == "cohort_below_k" || m["suppression"] == "not_in_protocol")
        << m.dump();
  }
  for (const Json* p : {&acme, &globex, &hooli, &tiny}) {
    EXPECT_EQ((*p)["release"]["privacy"]["differential_privacy"], true) << (*p)["name"];
  }

  // The pool is the bin-by-bin sum of exactly the contributing partners' histograms.
  std::vector<std::string> in_pool;
  for (const Json* p : {&acme, &globex, &hooli}) {
    if ((*p)["status"] == "contributed") in_pool.push_back((*p)["name"]);
  }
  EXPECT_EQ(report["pooled"]["partners"].get<std::vector<std::string>>(), in_pool);
  EXPECT_EQ(report["round"]["partners_contributed"].get<std::size_t>(), in_pool.size());
  for (const char* side : {"genuine", "impostor"}) {
    // Under differential privacy a verification release is bin layout 2: 21 raw noisy counts,
    // summed over the contributing partners ...
    std::vector<double> sum(metrics::kLayoutV2Bins, 0.0);
    for (const Json* p : {&acme, &globex, &hooli}) {
      if ((*p)["status"] != "contributed") continue;
      const std::vector<double> c = Counts(*p, side);
      ASSERT_EQ(c.size(), sum.size());
      for (std::size_t k = 0; k < c.size(); ++k) sum[k] += c[k];
    }
    // ... made consistent once, after pooling (non-negative, isotonic cumulative counts).
    const std::vector<double> consistent = metrics::ConsistentCounts(sum);
    const std::vector<double> pooled =
        report["pooled"]["histograms"][side].get<std::vector<double>>();
    ASSERT_EQ(pooled.size(), consistent.size());
    for (std::size_t k = 0; k < pooled.size(); ++k) {
      EXPECT_NEAR(pooled[k], consistent[k], 1e-9) << side << " bin " << k;
    }
  }
  // FNMR at FMR 1e-2 needs 300 impostor comparisons. Under differential privacy each subject is
  // behind at most c of them, so five-subject galleries have C(5,2) = 10 each and neither a
  // partner nor this pool of three can support it: withheld with the reason, never guessed.
  for (const Json* p : {&globex, &hooli}) {
    const Json& m = (*p)["metrics"][0];
    EXPECT_EQ(m["name"], "fnmr_at_fmr");
    EXPECT_EQ(m["suppression"], "insufficient_non_mated") << (*p)["name"] << m.dump();
  }
  const Json& pooled_1e2 = report["pooled"]["metrics"][0];
  EXPECT_EQ(pooled_1e2["target"], 0.01);
  EXPECT_EQ(pooled_1e2["suppression"], "insufficient_non_mated") << pooled_1e2.dump();
  // The image count one subject can move stays home under differential privacy.
  EXPECT_EQ(globex["release"]["counts"]["images"]["suppression"], "not_private")
      << globex["release"]["counts"].dump();

  // Egress: one release each, counted as its serialized bytes.
  for (const Json* p : {&acme, &globex, &hooli, &tiny}) {
    EXPECT_EQ((*p)["egress"]["messages_received"], 1) << (*p)["name"];
    EXPECT_EQ((*p)["egress"]["requests_sent"], 1) << (*p)["name"];
  }
  EXPECT_GT(acme["egress"]["bytes_received"].get<int>(), 2 * metrics::kLayoutV2Bins * 8);
  EXPECT_LT(acme["egress"]["bytes_received"].get<int>(), 16 * 1024);
  EXPECT_LT(tiny["egress"]["bytes_received"].get<int>(), 1024);
  EXPECT_EQ(report["egress_summary"]["messages_received"], 4);
  CheckReportFiles(out);

  // Later processes read the round back from the rounds database.
  const ProcessResult list = world_->Vendor({"rounds", "list", "--config", config});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("kmin-1"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("complete"), std::string::npos) << list.out;
  // acme may be withheld (its noisy histograms can come out empty): count what the round pooled.
  EXPECT_NE(list.out.find(absl::StrCat(in_pool.size(), "/4 (quorum 2)")), std::string::npos)
      << list.out;
  const ProcessResult show = world_->Vendor({"rounds", "show", "kmin-1", "--config", config});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("tiny"), std::string::npos);
  EXPECT_NE(show.out.find("k-minimum"), std::string::npos) << show.out;
  const ProcessResult json =
      world_->Vendor({"rounds", "show", "kmin-1", "--config", config, "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const Json again = Json::parse(json.out, nullptr, false);
  ASSERT_FALSE(again.is_discarded());
  EXPECT_EQ(again["pooled"], report["pooled"]);
  EXPECT_EQ(again["partners"], report["partners"]);
}

TEST_F(RoundsTest, RerunningARoundIdGetsTheStoredReleasesAgainInsteadOfNewOnes) {
  const std::string config = world_->CoordinatorConfig("rerun", {"acme", "globex", "hooli"}, 2);
  const std::string first = world_->dir() + "/report-rerun-1";
  const std::string second = world_->dir() + "/report-rerun-2";
  for (const std::string& out : {first, second}) {
    const ProcessResult r =
        world_->Vendor({"round", "--config", config, "--model", "1.1.0", "--protocol",
                        "verification", "--out", out, "--round-id", "rerun-1"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const Json a = LoadJson(first + "/report.json"), b = LoadJson(second + "/report.json");
  EXPECT_EQ(b["round"]["runs"], 2);
  // acme adds fresh noise to every new release: identical noisy counts mean the
  // partner sent its stored release, charged once.
  EXPECT_EQ(PartnerEntry(a, "acme")["release"], PartnerEntry(b, "acme")["release"]);
  EXPECT_NE(PartnerEntry(a, "acme")["release"], nullptr);
  EXPECT_EQ(a["pooled"]["histograms"], b["pooled"]["histograms"]);
  // Each partner's own log: released once, then the stored release replayed.
  for (const char* name : {"acme", "globex"}) {
    const std::string log = world_->PartnerLog(name);
    std::size_t released = 0, replayed = 0;
    for (std::size_t at = 0; (at = log.find("round rerun-1 ", at)) != std::string::npos; ++at) {
      const std::string line = log.substr(at, log.find('\n', at) - at);
      if (line.find(": released ") != std::string::npos) ++released;
      if (line.find("replayed stored release") != std::string::npos) ++replayed;
    }
    EXPECT_EQ(released, 1u) << name << ":\n" << log;
    EXPECT_EQ(replayed, 1u) << name << ":\n" << log;
  }

  // A different request under the same id is refused before anyone is asked.
  const ProcessResult other =
      world_->Vendor({"round", "--config", config, "--model", "1.0.0", "--protocol", "verification",
                      "--out", world_->dir() + "/report-rerun-3", "--round-id", "rerun-1"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("was run with model version 1.1.0"), std::string::npos) << other.err;
}

// Runs a verification round of 1.1.0 with `config` (partners hooli and globex, quorum 1) into
// report-TAG, checks that hooli contributed, and returns the report (null when the round failed).
Json HooliAndGlobexRound(RoundsWorld& world, const std::string& config, const std::string& tag,
                         ProcessResult* result) {
  const std::string out = world.dir() + "/report-" + tag;
  *result = world.Vendor({"round", "--config", config, "--model", "1.1.0", "--protocol",
                          "verification", "--out", out});
  EXPECT_EQ(result->exit_code, 0) << result->out << result->err;
  if (result->exit_code != 0) return Json();
  Json report = LoadJson(out + "/report.json");
  EXPECT_EQ(PartnerEntry(report, "hooli")["status"], "contributed");
  return report;
}

TEST_F(RoundsTest, APartnerWhoseCertificateCarriesAnotherNameIsNeverAsked) {
  // globex's listener presents globex.partners.test; the config expects hooli's name there.
  const std::string config = world_->CoordinatorConfig("wrong-name", {"hooli", "globex"}, 1,
                                                       {{"globex", "hooli.partners.test"}});
  const std::size_t globex_log_before = world_->PartnerLog("globex").size();
  ProcessResult r;
  const Json report = HooliAndGlobexRound(*world_, config, "wrong-name", &r);
  ASSERT_FALSE(report.is_null());
  const Json& globex = PartnerEntry(report, "globex");
  EXPECT_EQ(globex["status"], "unreachable") << globex.dump();
  EXPECT_EQ(globex["release"], nullptr);
  EXPECT_EQ(globex["egress"]["messages_received"], 0);
  // No request reached globex's evaluation service.
  const std::string globex_log = world_->PartnerLog("globex").substr(globex_log_before);
  EXPECT_EQ(globex_log.find("vendor=fedface-vendor"), std::string::npos) << globex_log;
  EXPECT_NE(world_->PartnerLog("hooli").find("vendor=fedface-vendor"), std::string::npos);
}

TEST_F(RoundsTest, ACertificateOfAnotherPartnerAtAPartnersAddressIsRefused) {
  // The address configured for globex is hooli's listener, and the host check passes (both
  // development certificates name 127.0.0.1): only the identity check can tell them apart.
  const std::string config = world_->CoordinatorConfig(
      "impostor", {"hooli", "globex"}, 1, {{"globex", "127.0.0.1"}}, {{"globex", "hooli"}});
  ProcessResult r;
  const Json report = HooliAndGlobexRound(*world_, config, "impostor", &r);
  ASSERT_FALSE(report.is_null());
  const Json& globex = PartnerEntry(report, "globex");
  EXPECT_EQ(globex["status"], "failed") << globex.dump();
  EXPECT_EQ(globex["attempts"], 1) << "an identity mismatch is not retried";
  EXPECT_EQ(globex["release"], nullptr);
  const std::string reason = globex["reason"].get<std::string>();
  EXPECT_NE(reason.find("partner 'globex' at 127.0.0.1:"), std::string::npos) << reason;
  EXPECT_NE(reason.find("presented the certificate of 'hooli'"), std::string::npos) << reason;
  EXPECT_NE(r.err.find("presented the certificate of 'hooli'"), std::string::npos) << r.err;
}

// Copies a live SQLite database (WAL included) with SQLite's own backup: the copy is what a
// reader would see now.
bool BackupDatabase(const std::string& from, const std::string& to) {
  sqlite3* src = nullptr;
  sqlite3* dst = nullptr;
  bool ok = sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
            sqlite3_open(to.c_str(), &dst) == SQLITE_OK;
  if (ok) {
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
    ok = b != nullptr && sqlite3_backup_step(b, -1) == SQLITE_DONE;
    if (b != nullptr) sqlite3_backup_finish(b);
  }
  sqlite3_close(src);
  sqlite3_close(dst);
  return ok;
}

// The vendor's anchors (the ledger head every release carried, and the release's digest) verify
// the partner's real ledger after real rounds, and catch its last entry being cut off.
TEST_F(RoundsTest, TheVendorsAnchorsVerifyAPartnersLedgerAndCatchACutEnd) {
  const std::string config = world_->CoordinatorConfig("anchors", {"globex", "hooli"}, 2);
  for (const char* round : {"anchors-1", "anchors-2"}) {
    const ProcessResult r = world_->Vendor(
        {"round", "--config", config, "--model", "1.1.0", "--protocol", "verification", "--out",
         world_->dir() + "/report-" + round, "--round-id", round});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  const ProcessResult anchors = world_->Vendor({"rounds", "anchors", "globex", "--config", config});
  ASSERT_EQ(anchors.exit_code, 0) << anchors.err;
  EXPECT_NE(anchors.out.find(" anchors-2\n"), std::string::npos) << anchors.out;
  const std::string anchors_file = world_->dir() + "/globex-anchors.txt";
  WriteText(anchors_file, anchors.out);

  const std::string partner_config = world_->PartnerConfigPath("globex");
  const ProcessResult intact = RunProcess({PartnerNodeBinary(), "ledger", "verify", "--config",
                                           partner_config, "--anchors", anchors_file},
                                          world_->dir());
  EXPECT_EQ(intact.exit_code, 0) << intact.out << intact.err;
  EXPECT_NE(intact.out.find("ledger anchors OK"), std::string::npos) << intact.out;

  // A copy of globex's ledger with its last entry (the anchors-2 release) cut off.
  const std::string ledger = fs::path(partner_config).parent_path().string() + "/egress_ledger.db";
  const std::string cut = world_->dir() + "/globex-ledger-cut.db";
  ASSERT_TRUE(BackupDatabase(ledger, cut)) << ledger;
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(cut.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DELETE FROM ledger_entries WHERE seq = "
                         "(SELECT max(seq) FROM ledger_entries)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const ProcessResult chain_only =
      RunProcess({PartnerNodeBinary(), "ledger", "verify", "--ledger", cut}, world_->dir());
  EXPECT_EQ(chain_only.exit_code, 0) << "the chain alone cannot see a cut end: " << chain_only.out;
  const ProcessResult with_anchors = RunProcess(
      {PartnerNodeBinary(), "ledger", "verify", "--ledger", cut, "--anchors", anchors_file},
      world_->dir());
  EXPECT_EQ(with_anchors.exit_code, 1) << with_anchors.out;
  EXPECT_NE(with_anchors.out.find("anchor anchors-2"), std::string::npos) << with_anchors.out;
}

TEST_F(RoundsTest, APartnerKilledMidRoundIsReportedAndTheRoundCompletesWithQuorum) {
  const std::string config = world_->CoordinatorConfig("kill", {"globex", "hooli", "initech"}, 2);
  const std::string out = world_->dir() + "/report-kill";
  const std::size_t registry_log_before = world_->RegistryLog().size();
  std::unique_ptr<ChildProcess> round =
      world_->StartVendor({"round", "--config", config, "--model", "1.1.0", "--protocol",
                           "verification", "--out", out, "--round-id", "kill-1"},
                          "round-kill");
  // initech has only 1.0.0: to evaluate 1.1.0 it pulls it from the (throttled) registry. Once
  // its download has started, initech is working on the round: kill it there.
  bool pulling = false;
  const absl::Time end = absl::Now() + absl::Seconds(300);
  while (!pulling && absl::Now() < end && round->Running()) {
    pulling = world_->RegistryLog().substr(registry_log_before).find("partner=initech") !=
              std::string::npos;
    if (!pulling) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(pulling) << "initech never started pulling 1.1.0; registry log:\n"
                       << world_->RegistryLog() << "\ninitech:\n"
                       << world_->PartnerLog("initech");
  world_->KillPartner("initech");
  ASSERT_FALSE(world_->PartnerRunning("initech"));

  const int exit_code = round->Wait(absl::Minutes(10));
  const std::string table = ReadText(world_->dir() + "/round-kill.out");
  const std::string log = ReadText(world_->dir() + "/round-kill.err");
  ASSERT_EQ(exit_code, 0) << table << log;
  EXPECT_NE(table.find("State: complete: 2 of 3 partners contributed (quorum 2)"),
            std::string::npos)
      << table;
  const Json report = LoadJson(out + "/report.json");
  EXPECT_EQ(PartnerEntry(report, "globex")["status"], "contributed");
  EXPECT_EQ(PartnerEntry(report, "hooli")["status"], "contributed");
  const Json& initech = PartnerEntry(report, "initech");
  EXPECT_EQ(initech["status"], "unreachable") << initech.dump();
  EXPECT_EQ(initech["attempts"], 3);
  EXPECT_NE(initech["reason"].get<std::string>().find("unreachable after 3 attempts"),
            std::string::npos)
      << initech["reason"];
  EXPECT_EQ(initech["egress"]["messages_received"], 0);
  EXPECT_EQ(report["pooled"]["partners"], Json::array({"globex", "hooli"}));
  EXPECT_TRUE(report["pooled"]["available"].get<bool>());
  // The retries are in the coordinator's log.
  EXPECT_NE(log.find("initech (127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("retrying in"), std::string::npos) << log;
  CheckReportFiles(out);

  const ProcessResult show = world_->Vendor({"rounds", "show", "kill-1", "--config", config});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("unreachable after 3 attempts"), std::string::npos) << show.out;
}

}  // namespace
}  // namespace fedface::testing
