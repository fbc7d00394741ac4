// `partner_node serve` between real processes over loopback: a vendor-side client (raw gRPC, so
// the test holds the exact bytes that crossed the wire) against the partner's vendor-facing
// listener, the partner's own stores read back afterwards, and `partner_node releases` /
// `evaluate-release` run as the partner's operator would.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <iostream>
#include <memory>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "core/common/sha256.h"
#include "core/config/config_file.h"
#include "core/package/ed25519.h"
#include "fedface/v1/evaluation.pb.h"
#include "fedface/v1/local_match.grpc.pb.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/held_release_store.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/serve/reembedding_allowance.h"
#include "partner_node/serve/serve_config.h"
#include "tests/integration/partner_serve/serve_harness.h"
#include "tests/support/proc_stats.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;
using fedface::v1::EvaluationRelease;
using fedface::v1::RunEvaluationRequest;

RunEvaluationRequest Request(
    const std::string& round,
    fedface::v1::EvaluationProtocol protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION,
    uint64_t seed = 7) {
  RunEvaluationRequest r;
  r.set_round_id(round);
  r.set_model_version("1.0.0");
  r.set_protocol(protocol);
  r.set_seed(seed);
  return r;
}

std::vector<partner::LedgerEntry> LedgerEntries(const std::string& path) {
  if (!fs::exists(path)) return {};
  auto ledger = partner::EgressLedger::Open(path, partner::EgressLedger::OpenMode::kMustExist);
  if (!ledger.ok()) {
    ADD_FAILURE() << ledger.status();
    return {};
  }
  absl::StatusOr<std::vector<partner::LedgerEntry>> entries = (*ledger)->Entries();
  EXPECT_TRUE(entries.ok()) << entries.status();
  return entries.ok() ? *entries : std::vector<partner::LedgerEntry>{};
}

// The ledger holds exactly these refusals, in this order, each as the vendor received it
// (egress/vendor_status.h: refusals are recorded like messages), and nothing else.
void ExpectLedgeredRefusals(const std::string& ledger, const std::vector<grpc::Status>& received) {
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(ledger);
  ASSERT_EQ(entries.size(), received.size());
  for (size_t k = 0; k < entries.size(); ++k) {
    EXPECT_EQ(entries[k].message_type, partner::kRefusalLedgerType);
    const absl::Status as_sent(static_cast<absl::StatusCode>(received[k].error_code()),
                               received[k].error_message());
    EXPECT_EQ(entries[k].message_sha256, Sha256Hex(partner::RefusalBytes(as_sent)))
        << "entry " << entries[k].seq << " vs " << received[k].error_message();
  }
}

double Spent(const std::string& budget_path, const std::string& vendor) {
  if (!fs::exists(budget_path)) return 0;
  auto budget = partner::PrivacyBudget::Open(budget_path, 1000);
  if (!budget.ok()) return -1;
  absl::StatusOr<double> spent = (*budget)->Spent(vendor);
  return spent.ok() ? *spent : -1;
}

// A started partner for one test; skips when the suite's data is missing.
#define START_PARTNER(server, world, tag)                                      \
  PartnerServer server(world, tag);                                            \
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log(); \
  do {                                                                         \
  } while (0)

class PartnerServeTest : public ServeTest {};

// The egress.* privacy settings of the partner's configuration file (what `partner_node audit
// --config` checks a layout-2 release against).
partner::DifferentialPrivacyConfig PrivacyOf(const PartnerWorld& world) {
  absl::StatusOr<Config> config = Config::Load(world.config, partner::PartnerConfigSchema());
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return {};
  absl::StatusOr<partner::EgressSettings> egress = partner::EgressSettingsFrom(*config);
  EXPECT_TRUE(egress.ok()) << egress.status();
  return egress.ok() ? egress->guard.dp : partner::DifferentialPrivacyConfig{};
}

// The release passes the partner's own shape check with its configuration.
::testing::AssertionResult Allowlisted(const EvaluationRelease& release,
                                       const PartnerWorld& world) {
  const partner::DifferentialPrivacyConfig dp = PrivacyOf(world);
  const absl::Status s = partner::CheckAllowlisted(release, {partner::kEvaluationReleaseType}, &dp);
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << s;
}

TEST_F(PartnerServeTest, ReleasesAnAllowlistedEvaluationWhoseLedgerDigestIsTheWireBytes) {
  const PartnerWorld world = MakePartnerWorld("release", PartnerSettings{});
  START_PARTNER(server, world, "release");
  EXPECT_NE(server.startup_line().find("BLAS"), std::string::npos) << server.startup_line();
  EXPECT_NE(server.startup_line().find("model 1.0.0"), std::string::npos);

  const auto start = std::chrono::steady_clock::now();
  const RawReply reply =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, Request("r-1").SerializeAsString());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
  std::cout << "[ measured ] verification round (80 images, DP on): " << seconds << " s, "
            << reply.bytes.size() << " bytes on the wire" << std::endl;

  EvaluationRelease release;
  ASSERT_TRUE(release.ParseFromString(reply.bytes));
  EXPECT_TRUE(Allowlisted(release, world));
  EXPECT_EQ(release.round_id(), "r-1");
  EXPECT_EQ(release.model_version(), "1.0.0");
  EXPECT_EQ(release.counts().subjects().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_EQ(release.counts().subjects().at_least(), 10u);  // 16 subjects: band [10, 20)
  EXPECT_EQ(release.counts().subjects().below(), 20u);
  // Differential privacy: bin layout 2, 21 raw noisy counts, the noise of the configuration.
  EXPECT_EQ(release.bin_edges_version(), 2u);
  EXPECT_EQ(release.genuine_histogram().counts_size(), 21);
  EXPECT_TRUE(release.privacy().differential_privacy());
  EXPECT_EQ(release.privacy().epsilon(), 1.0);
  EXPECT_EQ(release.privacy().contribution_bound(), 64u);
  EXPECT_EQ(release.privacy().genuine_contribution_bound(), 10u);
  EXPECT_EQ(release.privacy().impostor_contribution_bound(), 64u);
  EXPECT_GT(release.privacy().genuine_noise_scale(), 0);
  EXPECT_GT(release.privacy().impostor_noise_scale(), 0);
  EXPECT_EQ(release.throughput().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_GT(release.throughput().embeddings_per_second(), 0);

  // The ledger recorded exactly these bytes.
  std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_sha256, Sha256Hex(reply.bytes));
  EXPECT_EQ(entries[0].size_bytes, static_cast<int64_t>(reply.bytes.size()));
  EXPECT_EQ(entries[0].vendor, "fedface-vendor");
  EXPECT_EQ(entries[0].message_type, partner::kEvaluationReleaseType);
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);
  EXPECT_EQ(server.Stop(), 0) << server.log();
}

TEST_F(PartnerServeTest, RepeatedRoundIdGetsIdenticalBytesAndIsChargedOnce) {
  const PartnerWorld world = MakePartnerWorld("replay", PartnerSettings{});
  START_PARTNER(server, world, "replay");
  auto vendor = Vendor(server.vendor_port());
  const std::string request = Request("r-again").SerializeAsString();
  const RawReply first = CallRaw(vendor, kRunEvaluation, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const RawReply second = CallRaw(vendor, kRunEvaluation, request);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(first.bytes, second.bytes) << "a replay must not carry fresh noise";
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 2u) << "every send is recorded";
  EXPECT_EQ(entries[0].message_sha256, entries[1].message_sha256);

  // The same round_id for another request is refused.
  const RawReply other = CallRaw(
      vendor, kRunEvaluation,
      Request("r-again", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 8).SerializeAsString());
  EXPECT_EQ(other.status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

// Issue 16: a vendor replaying a round id in a loop made one send and one ledger row per call.
// Within vendor_api.rate_limit.replays per window replays are still answered (and recorded);
// beyond it each is refused with the fixed rate-limit text and the window is recorded once.
TEST_F(PartnerServeTest, ReplaysBeyondTheLimitAreRefusedWithOneLedgerRowPerWindow) {
  PartnerSettings settings;
  settings.rate_limit_replays = 3;
  const PartnerWorld world = MakePartnerWorld("rate-limit", settings);
  START_PARTNER(server, world, "rate-limit");
  auto vendor = Vendor(server.vendor_port());
  const std::string request = Request("r-loop").SerializeAsString();
  const RawReply first = CallRaw(vendor, kRunEvaluation, request);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  int answered = 0, refused = 0;
  constexpr int kReplays = 40;
  for (int i = 0; i < kReplays; ++i) {
    const RawReply again = CallRaw(vendor, kRunEvaluation, request);
    if (again.status.ok()) {
      EXPECT_EQ(again.bytes, first.bytes);
      ++answered;
      continue;
    }
    ++refused;
    EXPECT_EQ(again.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(again.status.error_message(), partner::kRateLimitedText);
  }
  // The 60 s windows are aligned to the clock: the loop may straddle a boundary, where the new
  // window admits three more and is recorded once more.
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  int releases = 0, windows = 0;
  for (const partner::LedgerEntry& e : entries) {
    if (e.message_type == partner::kRateLimitLedgerType) {
      ++windows;
      EXPECT_EQ(e.message_sha256, Sha256Hex(partner::RefusalBytes(
                                      absl::ResourceExhaustedError(partner::kRateLimitedText))));
    } else {
      EXPECT_EQ(e.message_sha256, Sha256Hex(first.bytes)) << e.message_type;
      ++releases;
    }
  }
  EXPECT_GE(windows, 1);
  EXPECT_LE(windows, 2);
  EXPECT_EQ(answered, 3 * windows) << "within the limit replays are still answered";
  EXPECT_EQ(refused, kReplays - answered);
  EXPECT_EQ(releases, 1 + answered);
  EXPECT_EQ(entries.size(), static_cast<size_t>(1 + answered + windows))
      << refused << " refusals must not add a row each";
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);
  // Other rounds of the same vendor are not replays: still evaluated.
  EXPECT_TRUE(CallRaw(vendor, kRunEvaluation, Request("r-other").SerializeAsString()).status.ok());
  EXPECT_EQ(server.Stop(), 0) << server.log();
  EXPECT_NE(server.log().find("rate limit reached"), std::string::npos) << server.log();
}

TEST_F(PartnerServeTest, ConcurrentIdenticalRequestsShareOneEvaluationAndOneCharge) {
  const PartnerWorld world = MakePartnerWorld("concurrent", PartnerSettings{});
  START_PARTNER(server, world, "concurrent");
  const std::string request = Request("r-together").SerializeAsString();
  std::vector<std::future<RawReply>> calls;
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::async(std::launch::async, [&] {
      return CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request);
    }));
  }
  std::vector<RawReply> replies;
  for (auto& c : calls) replies.push_back(c.get());
  for (const RawReply& r : replies) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.bytes, replies[0].bytes);
  }
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 3u);
  for (const auto& e : entries) EXPECT_EQ(e.message_sha256, Sha256Hex(replies[0].bytes));
}

TEST_F(PartnerServeTest, SuppressesEveryValueOfAGalleryBelowKMinimum) {
  PartnerSettings settings;
  settings.k_minimum = 20;  // the gallery has 16 subjects
  const PartnerWorld world = MakePartnerWorld("below-k", settings);
  START_PARTNER(server, world, "below-k");
  const RawReply reply =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, Request("r-small").SerializeAsString());
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EvaluationRelease release;
  ASSERT_TRUE(release.ParseFromString(reply.bytes));
  EXPECT_EQ(release.counts().subjects().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(release.counts().subjects().at_least(), 0u);
  EXPECT_EQ(release.genuine_histogram().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(release.genuine_histogram().counts_size(), 0);
  EXPECT_EQ(release.impostor_histogram().counts_size(), 0);
  EXPECT_EQ(release.eer().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(release.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(release.throughput().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  ASSERT_EQ(LedgerEntries(world.ledger).size(), 1u);
}

TEST_F(PartnerServeTest, RefusesIdentificationWhileDifferentialPrivacyIsOnBeforeAnyWork) {
  const PartnerWorld world = MakePartnerWorld("identification-dp", PartnerSettings{});
  START_PARTNER(server, world, "identification-dp");
  const RawReply reply = CallRaw(
      Vendor(server.vendor_port()), kRunEvaluation,
      Request("r-1n-dp", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION).SerializeAsString());
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(reply.status.error_message(), partner::kIdentificationUnderDpRefused);
  ExpectLedgeredRefusals(world.ledger, {reply.status});
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 0);
}

TEST_F(PartnerServeTest, BudgetRefusalSurvivesARestart) {
  PartnerSettings settings;
  settings.epsilon_budget = "1";  // one release of epsilon 1
  const PartnerWorld world = MakePartnerWorld("budget", settings);
  std::string first_bytes;
  {
    START_PARTNER(server, world, "budget-1");
    auto vendor = Vendor(server.vendor_port());
    const RawReply first = CallRaw(vendor, kRunEvaluation, Request("r-1").SerializeAsString());
    ASSERT_TRUE(first.status.ok()) << first.status.error_message();
    first_bytes = first.bytes;
    const RawReply second = CallRaw(vendor, kRunEvaluation, Request("r-2").SerializeAsString());
    EXPECT_EQ(second.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_TRUE(absl::StrContains(second.status.error_message(), "privacy budget exhausted"))
        << second.status.error_message();
    EXPECT_EQ(server.Stop(), 0) << "SIGTERM stops serve gracefully\n" << server.log();
  }
  START_PARTNER(server, world, "budget-2");
  auto vendor = Vendor(server.vendor_port());
  const RawReply third = CallRaw(vendor, kRunEvaluation, Request("r-3").SerializeAsString());
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << third.status.error_message();
  // The release already paid for is still answered, byte for byte.
  const RawReply replay = CallRaw(vendor, kRunEvaluation, Request("r-1").SerializeAsString());
  ASSERT_TRUE(replay.status.ok()) << replay.status.error_message();
  EXPECT_EQ(replay.bytes, first_bytes);
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);
}

TEST_F(PartnerServeTest, VendorPortOffersOnlyTheEvaluationService) {
  const PartnerWorld world = MakePartnerWorld("separation", PartnerSettings{});
  START_PARTNER(server, world, "separation");
  auto vendor = Vendor(server.vendor_port());
  const google::protobuf::ServiceDescriptor* local_api =
      fedface::v1::LocalEnrollRequest::descriptor()->file()->FindServiceByName("LocalMatch");
  ASSERT_NE(local_api, nullptr);
  ASSERT_GT(local_api->method_count(), 0);
  for (int i = 0; i < local_api->method_count(); ++i) {
    const std::string method =
        absl::StrCat("/", local_api->full_name(), "/", local_api->method(i)->name());
    const RawReply reply = CallRaw(vendor, method, "");
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
  for (const char* method : {"/grpc.health.v1.Health/Check",
                             "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                             "/fedface.v1.ModelRegistry/ListModels"}) {
    EXPECT_EQ(CallRaw(vendor, method, "").status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << method;
  }
  // The local listener is the other way round: the local API answers there (an empty image is
  // refused by the service itself), the evaluation service does not exist there.
  auto local = grpc::CreateChannel(server.local_address(), grpc::InsecureChannelCredentials());
  const std::string identify = absl::StrCat("/", local_api->full_name(), "/Identify");
  const RawReply local_reply = CallRaw(local, identify, "");
  EXPECT_NE(local_reply.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
      << local_reply.status.error_message();
  EXPECT_EQ(
      CallRaw(local, kRunEvaluation, Request("r-local").SerializeAsString()).status.error_code(),
      grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
}

TEST_F(PartnerServeTest, RefusesCallersWithoutAnAllowedCertificate) {
  const PartnerWorld world = MakePartnerWorld("auth", PartnerSettings{});
  START_PARTNER(server, world, "auth");
  const std::string request = Request("r-auth").SerializeAsString();
  const RawReply no_cert =
      CallRaw(VendorChannel(pki_, server.vendor_port(), ""), kRunEvaluation, request, 20);
  EXPECT_EQ(no_cert.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << no_cert.status.error_message();
  const RawReply plaintext =
      CallRaw(VendorChannel(pki_, server.vendor_port(), "", true), kRunEvaluation, request, 20);
  EXPECT_EQ(plaintext.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  const RawReply intruder =
      CallRaw(VendorChannel(pki_, server.vendor_port(), "partners/intruder/client"), kRunEvaluation,
              request, 20);
  EXPECT_EQ(intruder.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << intruder.status.error_message();
  // Failed handshakes never reach the service; the refused identity's call is ledgered under it.
  ExpectLedgeredRefusals(world.ledger, {intruder.status});
  EXPECT_EQ(LedgerEntries(world.ledger)[0].vendor, "intruder");
  EXPECT_DOUBLE_EQ(Spent(world.budget, "intruder"), 0);
  EXPECT_NE(server.log().find("intruder"), std::string::npos) << "refusals are logged";
}

TEST_F(PartnerServeTest, RefusesACallerWhoseCertificateWasIssuedForServing) {
  const PartnerWorld world = MakePartnerWorld("server-as-client", PartnerSettings{});
  START_PARTNER(server, world, "server-as-client");
  // The allowed vendor's name, but a serverAuth certificate (as the registry's or a partner
  // listener's is): the name alone must not open the evaluation service.
  const std::string cert = world.dir + "/vendor-as-server";
  ASSERT_TRUE(IssueCertificate(pki_, cert, "fedface-vendor", "serverAuth", ""));
  const std::string request = Request("r-server-as-client").SerializeAsString();
  const RawReply reply =
      CallRaw(VendorChannel(pki_, server.vendor_port(), cert), kRunEvaluation, request, 20);
  EXPECT_FALSE(reply.status.ok());
  EXPECT_TRUE(reply.bytes.empty());
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 0);
  std::cout << "[ info ] a serverAuth certificate as the caller: "
            << static_cast<int>(reply.status.error_code()) << ": " << reply.status.error_message()
            << std::endl;
  // The vendor's own client certificate is served: the refusal is about the certificate's role.
  const RawReply ok = CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request, 300);
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
}

TEST_F(PartnerServeTest, TheCoordinatorRefusesAListenerPresentingAClientCertificate) {
  // A clientAuth-only certificate with the partner's name and address (CN=acme, 127.0.0.1): a
  // partner's client key used to serve.
  PartnerSettings settings;
  const std::string dir = MakeTempDir("client-as-server");
  settings.listener_certificate = dir + "/acme-client-named";
  ASSERT_TRUE(IssueCertificate(pki_, settings.listener_certificate, "acme", "clientAuth",
                               "DNS:localhost,IP:127.0.0.1"));
  const PartnerWorld world = MakePartnerWorld("client-as-server", settings);
  START_PARTNER(server, world, "client-as-server");
  fs::create_directories(dir + "/registry");
  const std::string config = dir + "/coordinator.yaml";
  WriteText(
      config,
      absl::StrCat(
          "server:\n  ca_cert: ", pki_, "/ca.crt\n  cert: ", pki_, "/registry.crt\n  key: ", pki_,
          "/registry.key\n  partners: [acme]\nregistry:\n  dir: ", dir,
          "/registry\ncoordinator:\n  partners: [\"acme 127.0.0.1:", server.vendor_port(),
          "\"]\n  client_cert: ", pki_, "/coordinator.crt\n  client_key: ", pki_,
          "/coordinator.key\n  quorum: 1\n  max_attempts: 1\n  rounds_db: ", dir, "/rounds.db\n"));
  const ProcessResult r =
      RunProcess({ModelVendorBinary(), "round", "--config", config, "--model", "1.0.0",
                  "--protocol", "verification", "--out", dir + "/report"},
                 dir);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("acme"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(": contributed"), std::string::npos) << r.err;
  // gRPC 1.51 with OpenSSL 3 refuses it in the handshake (the purpose check of the chain), so
  // the partner never sees the request; the coordinator's own role check (CheckPartnerServer)
  // would discard the answer otherwise.
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
  std::cout << "[ info ] a clientAuth certificate as the partner's listener:\n" << r.err;
}

TEST_F(PartnerServeTest, RefusesOversizedAndMalformedRequests) {
  const PartnerWorld world = MakePartnerWorld("limits", PartnerSettings{});
  START_PARTNER(server, world, "limits");
  auto vendor = Vendor(server.vendor_port());
  const RawReply big = CallRaw(vendor, kRunEvaluation, std::string(100 << 10, 'x'));
  EXPECT_EQ(big.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  const RawReply garbage = CallRaw(vendor, kRunEvaluation, std::string("\xff\xff\xff", 3));
  EXPECT_EQ(garbage.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  RunEvaluationRequest bad = Request("../etc/passwd");
  const RawReply bad_round = CallRaw(vendor, kRunEvaluation, bad.SerializeAsString());
  EXPECT_EQ(bad_round.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // gRPC refuses the oversized message itself, before the service (no partner data in it); the
  // service's own refusals are ledgered.
  ExpectLedgeredRefusals(world.ledger, {garbage.status, bad_round.status});
}

TEST_F(PartnerServeTest, RefusesAModelVersionItCannotPullAndVerify) {
  const PartnerWorld world = MakePartnerWorld("no-model", PartnerSettings{});
  START_PARTNER(server, world, "no-model");
  RunEvaluationRequest request = Request("r-v9");
  request.set_model_version("9.9.9");
  const RawReply reply =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // A text of the fixed catalogue (egress/vendor_status.h): not even the vendor's own string.
  EXPECT_EQ(reply.status.error_message(),
            "the requested model version could not be pulled and verified on this partner (the "
            "partner's log says why)");
  EXPECT_FALSE(absl::StrContains(reply.status.error_message(), world.dir))
      << "local paths stay in the partner's log";
  EXPECT_TRUE(absl::StrContains(server.log(), "cannot load model 9.9.9 for evaluation"))
      << server.log();
  EXPECT_EQ(ReadText(GetServeFixture().cache + "/active"), "1.0.0\n");
  // A refusal about the vendor's own model, not the partner's data: recorded, not charged.
  ExpectLedgeredRefusals(world.ledger, {reply.status});
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 0);
}

TEST_F(PartnerServeTest, RefusesAnotherModelVersionWhenEvaluatingOtherVersionsIsOff) {
  PartnerSettings settings;
  settings.evaluate_other_versions = false;
  const PartnerWorld world = MakePartnerWorld("no-other", settings);
  START_PARTNER(server, world, "no-other");
  EXPECT_TRUE(absl::StrContains(server.startup_line(), "other versions refused"))
      << server.startup_line();
  RunEvaluationRequest request = Request("r-v2");
  request.set_model_version("2.0.0");
  const RawReply reply =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(reply.status.error_message(),
            "the requested model version is not the partner's active model and this partner does "
            "not evaluate other model versions");
  ExpectLedgeredRefusals(world.ledger, {reply.status});
}

TEST_F(PartnerServeTest, RefusesTheRetiredAllowModelSwitchKeyNamingIt) {
  const PartnerWorld world = MakePartnerWorld("retired-key", PartnerSettings{});
  std::string yaml = ReadText(world.config);
  const std::string key = "evaluate_other_versions: true";
  ASSERT_NE(yaml.find(key), std::string::npos) << yaml;
  yaml.replace(yaml.find(key), key.size(), "allow_model_switch: true");
  WriteText(world.config, yaml);
  const ProcessResult refused =
      RunProcess({PartnerNodeBinary(), "serve", "--config", world.config}, world.dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(
      absl::StrContains(refused.err, "key 'evaluation.allow_model_switch' is no longer supported"))
      << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "evaluation.evaluate_other_versions")) << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "partner_node models activate")) << refused.err;
}

// A vendor registry that publishes the fixture's weights, signed, under each of `versions`.
class PublishingRegistry {
 public:
  explicit PublishingRegistry(const std::vector<std::string>& versions) {
    const ServeFixture& f = GetServeFixture();
    dir_ = MakeTempDir("registry");
    absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::LoadPem(f.vendor_key);
    if (!key.ok()) {
      error_ = key.status().ToString();
      return;
    }
    fs::create_directories(dir_ + "/registry");
    for (const std::string& v : versions) {
      if (!PublishCopy(TestPackageDir(), dir_ + "/registry/" + v, v, &*key)) {
        error_ = "cannot publish " + v;
        return;
      }
    }
    WriteText(dir_ + "/vendor.yaml",
              VendorConfigYaml(f.pki, dir_ + "/registry", "127.0.0.1:0", ""));
    server_ = std::make_unique<VendorServer>(dir_ + "/vendor.yaml", dir_, "registry");
    if (!server_->WaitReady()) error_ = "the registry did not start: " + server_->log();
  }
  const std::string& error() const { return error_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", server_->port()); }

 private:
  std::string dir_, error_;
  std::unique_ptr<VendorServer> server_;
};

// What the partner's own applications see: raw reply bytes of Identify and Verify for one of
// the gallery's own images.
struct LocalAnswers {
  RawReply identify, verify;
};

LocalAnswers AskLocalApi(const std::string& address) {
  const ServeFixture& f = GetServeFixture();
  std::vector<fs::path> subjects;
  for (const auto& e : fs::directory_iterator(f.gallery_dir)) subjects.push_back(e.path());
  std::sort(subjects.begin(), subjects.end());
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(subjects.front())) images.push_back(e.path());
  std::sort(images.begin(), images.end());
  const std::string image = ReadText(images.front().string());
  auto local = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  fedface::v1::LocalIdentifyRequest identify;
  identify.set_image(image);
  identify.set_top_k(5);
  fedface::v1::LocalVerifyRequest verify;
  verify.set_subject(subjects.front().filename().string());
  verify.set_image(image);
  return {CallRaw(local, "/fedface.v1.LocalMatch/Identify", identify.SerializeAsString(), 120),
          CallRaw(local, "/fedface.v1.LocalMatch/Verify", verify.SerializeAsString(), 120)};
}

// N of each "evaluation embeddings of model VERSION (not active): N image(s) re-embedded" line
// of the log, in order.
std::vector<int> EvaluationReembeddings(const std::string& log, const std::string& version) {
  const std::regex line(absl::StrCat("evaluation embeddings of model ", version,
                                     R"( \(not active\): (\d+) image\(s\) re-embedded)"));
  std::vector<int> counts;
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
    counts.push_back(std::stoi((*it)[1]));
  }
  return counts;
}

// The production gallery store's counts for `version`.
partner::GalleryCounts ProductionCounts(const PartnerWorld& world, const std::string& version) {
  absl::StatusOr<std::unique_ptr<partner::GalleryStore>> store =
      partner::OpenGalleryStore(partner::SqliteGallerySpec(world.dir + "/gallery.db"));
  EXPECT_TRUE(store.ok()) << store.status();
  if (!store.ok()) return {};
  absl::StatusOr<partner::GalleryCounts> counts = (*store)->Counts(version);
  EXPECT_TRUE(counts.ok()) << counts.status();
  return counts.ok() ? *counts : partner::GalleryCounts{};
}

TEST_F(PartnerServeTest, EvaluatesAnotherVersionWithoutActivatingItOrChangingTheLocalApi) {
  PublishingRegistry registry({"2.0.0"});
  ASSERT_EQ(registry.error(), "");
  PartnerSettings settings;
  settings.registry_address = registry.address();
  settings.cache = CopyOfModelCache(MakeTempDir("eval-only-cache"));
  ASSERT_FALSE(settings.cache.empty());
  const PartnerWorld world = MakePartnerWorld("eval-only", settings);
  START_PARTNER(server, world, "eval-only");
  const std::string local_address = server.local_address();
  const LocalAnswers before = AskLocalApi(local_address);
  ASSERT_TRUE(before.identify.status.ok()) << before.identify.status.error_message();
  ASSERT_TRUE(before.verify.status.ok()) << before.verify.status.error_message();
  fedface::v1::LocalIdentifyResponse identified;
  ASSERT_TRUE(identified.ParseFromString(before.identify.bytes));
  EXPECT_EQ(identified.model_version(), "1.0.0");
  ASSERT_GT(identified.candidates_size(), 0);
  EXPECT_TRUE(identified.candidates(0).match());

  // No deadline to race: the vendor waits for the answer (what the evaluation costs is
  // measured, not assumed).
  RunEvaluationRequest request = Request("r-v2");
  request.set_model_version("2.0.0");
  const auto start = std::chrono::steady_clock::now();
  const RawReply reply =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
  EvaluationRelease release;
  ASSERT_TRUE(release.ParseFromString(reply.bytes));
  EXPECT_TRUE(Allowlisted(release, world));
  EXPECT_EQ(release.model_version(), "2.0.0");
  EXPECT_EQ(release.counts().subjects().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_GT(release.throughput().embeddings_per_second(), 0);
  const std::vector<int> first = EvaluationReembeddings(server.log(), "2.0.0");
  ASSERT_EQ(first.size(), 1u) << server.log();
  EXPECT_EQ(first[0], GalleryImageCount());
  std::cout << "[ measured ] round for another version (pull, verify, evaluation-only engine, "
            << first[0] << " images embedded, protocol): " << seconds << " s" << std::endl;

  // Evaluated, not activated: the cache's pointer, the production store, the local API.
  EXPECT_EQ(ReadText(settings.cache + "/active"), "1.0.0\n");
  EXPECT_TRUE(fs::exists(settings.cache + "/2.0.0/manifest.json")) << "pulled and installed";
  EXPECT_TRUE(absl::StrContains(server.log(), "model 2.0.0 loaded for evaluation only"))
      << server.log();
  const partner::GalleryCounts production = ProductionCounts(world, "1.0.0");
  EXPECT_EQ(production.stale_images, 0) << "nothing in gallery.db was re-embedded";
  EXPECT_GT(production.enrolled_images, 0);
  const LocalAnswers after = AskLocalApi(local_address);
  ASSERT_TRUE(after.identify.status.ok()) << after.identify.status.error_message();
  ASSERT_TRUE(after.verify.status.ok()) << after.verify.status.error_message();
  EXPECT_EQ(after.identify.bytes, before.identify.bytes) << "same model, index and answers";
  EXPECT_EQ(after.verify.bytes, before.verify.bytes);

  // A second round for 2.0.0 reuses the stored evaluation embeddings; the active version is
  // still evaluated from the production gallery.
  RunEvaluationRequest again = Request("r-v2-again");
  again.set_model_version("2.0.0");
  ASSERT_TRUE(
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, again.SerializeAsString()).status.ok());
  EXPECT_EQ(EvaluationReembeddings(server.log(), "2.0.0"), (std::vector<int>{first[0], 0}));
  const RawReply active =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, Request("r-v1").SerializeAsString());
  ASSERT_TRUE(active.status.ok()) << active.status.error_message();
  ASSERT_TRUE(release.ParseFromString(active.bytes));
  EXPECT_EQ(release.model_version(), "1.0.0");
  EXPECT_EQ(LedgerEntries(world.ledger).size(), 3u);
  EXPECT_EQ(ReadText(settings.cache + "/active"), "1.0.0\n");
  EXPECT_EQ(server.Stop(), 0);
  if (HasFailure()) std::cout << "serve's log:\n" << server.log() << std::endl;
}

TEST_F(PartnerServeTest,
       ReusesEvaluationEmbeddingsAfterARestartAndServesOnlyWhatThePartnerActivated) {
  PublishingRegistry registry({"2.0.0"});
  ASSERT_EQ(registry.error(), "");
  PartnerSettings settings;
  settings.registry_address = registry.address();
  settings.cache = CopyOfModelCache(MakeTempDir("restart-cache"));
  ASSERT_FALSE(settings.cache.empty());
  const PartnerWorld world = MakePartnerWorld("restart", settings);
  RunEvaluationRequest request = Request("r-v2-1");
  request.set_model_version("2.0.0");
  {
    START_PARTNER(server, world, "restart-1");
    const RawReply reply =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
    EXPECT_EQ(EvaluationReembeddings(server.log(), "2.0.0"),
              (std::vector<int>{GalleryImageCount()}));
    EXPECT_EQ(server.Stop(), 0);
  }
  {
    START_PARTNER(server, world, "restart-2");
    EXPECT_TRUE(absl::StrContains(server.startup_line(), "model 1.0.0")) << server.startup_line();
    request.set_round_id("r-v2-2");
    const auto start = std::chrono::steady_clock::now();
    const RawReply reply =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
    EXPECT_EQ(EvaluationReembeddings(server.log(), "2.0.0"), (std::vector<int>{0}))
        << "no second re-embedding after a restart\n"
        << server.log();
    std::cout << "[ measured ] round for another version after a restart (stored evaluation "
                 "embeddings reused): "
              << seconds << " s" << std::endl;
    EXPECT_EQ(server.Stop(), 0);
  }

  // Only the partner activates: then, after a restart, serve runs 2.0.0, and going back needs
  // the explicit flag.
  const std::string node = PartnerNodeBinary();
  ProcessResult activate =
      RunProcess({node, "models", "activate", "2.0.0", "--config", world.config}, world.dir);
  ASSERT_EQ(activate.exit_code, 0) << activate.err;
  EXPECT_TRUE(absl::StartsWith(activate.out, "active: 2.0.0 (was 1.0.0)")) << activate.out;
  {
    START_PARTNER(server, world, "restart-3");
    EXPECT_TRUE(absl::StrContains(server.startup_line(), "model 2.0.0")) << server.startup_line();
    // Now 2.0.0 is the active version: its round re-embeds the production gallery (once, and
    // counted like any re-embedding a round triggers).
    request.set_round_id("r-v2-3");
    const RawReply reply =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
    ASSERT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
    EXPECT_TRUE(absl::StrContains(server.log(),
                                  absl::StrCat("gallery re-embedded with the active model 2.0.0: ",
                                               GalleryImageCount(), " image(s) processed")))
        << server.log();
    EXPECT_EQ(ProductionCounts(world, "2.0.0").stale_images, 0);
    EXPECT_EQ(server.Stop(), 0);
  }
  ProcessResult rollback =
      RunProcess({node, "models", "activate", "1.0.0", "--config", world.config}, world.dir);
  EXPECT_EQ(rollback.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(rollback.err, "older than the active version 2.0.0"))
      << rollback.err;
  EXPECT_EQ(ReadText(settings.cache + "/active"), "2.0.0\n");
}

TEST_F(PartnerServeTest, RefusesRoundsBeyondTheReembeddingBoundWithAFixedText) {
  PublishingRegistry registry({"2.0.0", "3.0.0"});
  ASSERT_EQ(registry.error(), "");
  const int images = GalleryImageCount();
  ASSERT_GT(images, 2);

  // Per round: a gallery larger than one round may re-embed.
  PartnerSettings per_round;
  per_round.registry_address = registry.address();
  per_round.cache = CopyOfModelCache(MakeTempDir("bound-round-cache"));
  per_round.max_reembed_images_per_round = images - 1;
  const PartnerWorld small = MakePartnerWorld("bound-round", per_round);
  {
    START_PARTNER(server, small, "bound-round");
    RunEvaluationRequest request = Request("r-big");
    request.set_model_version("2.0.0");
    const RawReply reply =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, request.SerializeAsString());
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(reply.status.error_message(), partner::kReembeddingRefused);
    EXPECT_TRUE(absl::StrContains(server.log(), "per round")) << server.log();
    EXPECT_TRUE(EvaluationReembeddings(server.log(), "2.0.0").empty()) << "nothing embedded";
    // How much re-embedding a round needs depends on the gallery's size: the refusal is
    // recorded and charged like a release (no free oracle on the partner's data).
    ExpectLedgeredRefusals(small.ledger, {reply.status});
    EXPECT_DOUBLE_EQ(Spent(small.budget, "fedface-vendor"), 1.0);
  }

  // Per day, across restarts: room for one gallery but not two.
  PartnerSettings per_day;
  per_day.registry_address = registry.address();
  per_day.cache = CopyOfModelCache(MakeTempDir("bound-day-cache"));
  per_day.max_reembed_images_per_day = images + images / 2;
  const PartnerWorld world = MakePartnerWorld("bound-day", per_day);
  RunEvaluationRequest v2 = Request("r-v2");
  v2.set_model_version("2.0.0");
  RunEvaluationRequest v3 = Request("r-v3");
  v3.set_model_version("3.0.0");
  {
    START_PARTNER(server, world, "bound-day-1");
    const RawReply first =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, v2.SerializeAsString());
    ASSERT_TRUE(first.status.ok()) << first.status.error_message() << "\n" << server.log();
    const RawReply refused =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, v3.SerializeAsString());
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_EQ(refused.status.error_message(), partner::kReembeddingRefused);
    EXPECT_TRUE(absl::StrContains(server.log(), "per day")) << server.log();
    EXPECT_EQ(server.Stop(), 0);
  }
  {
    START_PARTNER(server, world, "bound-day-2");
    v3.set_round_id("r-v3-after-restart");
    const RawReply refused =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, v3.SerializeAsString());
    EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << "the day's count survives a restart";
    EXPECT_EQ(refused.status.error_message(), partner::kReembeddingRefused);
    // What needs no re-embedding is not refused: 2.0.0's stored embeddings.
    v2.set_round_id("r-v2-after-restart");
    const RawReply reused =
        CallRaw(Vendor(server.vendor_port()), kRunEvaluation, v2.SerializeAsString());
    EXPECT_TRUE(reused.status.ok()) << reused.status.error_message();
    EXPECT_EQ(server.Stop(), 0);
  }
  absl::StatusOr<std::unique_ptr<partner::ReembeddingAllowance>> allowance =
      partner::ReembeddingAllowance::Open(world.dir + "/evaluation_state/reembedding.db",
                                          {.max_per_round = 0, .max_per_day = 0});
  ASSERT_TRUE(allowance.ok()) << allowance.status();
  absl::StatusOr<int64_t> used = (*allowance)->UsedOn(absl::Now());
  ASSERT_TRUE(used.ok()) << used.status();
  // Unless the test ran across midnight UTC: then the count is on the other day.
  EXPECT_TRUE(*used == images || *used == 0) << *used << " of " << images;
  EXPECT_EQ(ReadText(per_day.cache + "/active"), "1.0.0\n");
  // Two releases and the two refusals, each refusal charged like a release (epsilon 1 each).
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(std::count_if(entries.begin(), entries.end(),
                          [](const partner::LedgerEntry& e) {
                            return e.message_type == partner::kRefusalLedgerType;
                          }),
            2);
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 4.0);
}

TEST_F(PartnerServeTest, ApprovalModeHoldsTheReleaseUntilAPersonApprovesIt) {
  PartnerSettings settings;
  settings.require_approval = true;
  const PartnerWorld world = MakePartnerWorld("approval", settings);
  START_PARTNER(server, world, "approval");
  auto vendor = Vendor(server.vendor_port());
  const std::string request = Request("r-held").SerializeAsString();
  const RawReply held = CallRaw(vendor, kRunEvaluation, request);
  EXPECT_EQ(held.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // The catalogue's fixed text: the held release's id (a counter of the partner's) stays home.
  EXPECT_EQ(held.status.error_message(),
            "held for approval: the partner reviews each release before it is sent; retry this "
            "round_id later");
  const RawReply held_again = CallRaw(vendor, kRunEvaluation, request);
  EXPECT_EQ(held_again.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // No release was sent: the two refusals are all the ledger holds.
  ExpectLedgeredRefusals(world.ledger, {held.status, held_again.status});
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 0) << "nothing was charged";

  const std::string node = PartnerNodeBinary();
  ProcessResult list = RunProcess({node, "releases", "list", "--config", world.config}, world.dir);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, "held")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "r-held")) << list.out;
  ProcessResult show =
      RunProcess({node, "releases", "show", "1", "--config", world.config}, world.dir);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_TRUE(absl::StrContains(show.out, "round_id: \"r-held\"")) << show.out;

  // What the noise cost, for the partner's eyes only: the exact figures recomputed here beside
  // the released ones. Nothing is charged, recorded or sent (the ledger still holds only the two
  // refusals, the vendor's port saw nothing new).
  ProcessResult local =
      RunProcess({node, "releases", "show", "1", "--local", "--config", world.config}, world.dir);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_TRUE(absl::StrContains(local.out, "LOCAL ONLY (never sent")) << local.out;
  EXPECT_TRUE(absl::StrContains(local.out, "epsilon")) << local.out;
  for (const char* metric : {"FNMR @ FMR 1e-2", "EER", "ROC AUC"}) {
    EXPECT_TRUE(absl::StrContains(local.out, metric)) << local.out;
  }
  ExpectLedgeredRefusals(world.ledger, {held.status, held_again.status});
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 0);
  ProcessResult unknown =
      RunProcess({node, "releases", "show", "9", "--local", "--config", world.config}, world.dir);
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(unknown.err, "no held release with id 9")) << unknown.err;
  ProcessResult misplaced = RunProcess(
      {node, "releases", "approve", "1", "--local", "--config", world.config}, world.dir);
  EXPECT_EQ(misplaced.exit_code, 2) << "--local belongs to show only";

  ProcessResult approve =
      RunProcess({node, "releases", "approve", "1", "--config", world.config}, world.dir);
  ASSERT_EQ(approve.exit_code, 0) << approve.err;
  EXPECT_DOUBLE_EQ(Spent(world.budget, "fedface-vendor"), 1.0);

  const RawReply sent = CallRaw(vendor, kRunEvaluation, request);
  ASSERT_TRUE(sent.status.ok()) << sent.status.error_message();
  // Exactly the bytes the person approved, recorded once in the ledger.
  auto store =
      partner::HeldReleaseStore::Open(world.held, partner::HeldReleaseStore::OpenMode::kMustExist);
  ASSERT_TRUE(store.ok());
  absl::StatusOr<std::optional<partner::HeldRelease>> row = (*store)->Get(1);
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ(sent.bytes, (*row)->release_bytes);
  EXPECT_EQ((*row)->state, partner::HeldState::kSent);
  EXPECT_TRUE(absl::StrContains(show.out, Sha256Hex(sent.bytes))) << "show printed the digest";
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].message_type, "fedface.v1.EvaluationRelease");
  EXPECT_EQ(entries[2].message_sha256, Sha256Hex(sent.bytes));
  list = RunProcess({node, "releases", "list", "--config", world.config}, world.dir);
  EXPECT_TRUE(absl::StrContains(list.out, "sent")) << list.out;

  // A declined release is never sent.
  const std::string other = Request("r-declined").SerializeAsString();
  EXPECT_EQ(CallRaw(vendor, kRunEvaluation, other).status.error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  ProcessResult decline =
      RunProcess({node, "releases", "decline", "2", "--config", world.config}, world.dir);
  ASSERT_EQ(decline.exit_code, 0) << decline.err;
  EXPECT_EQ(CallRaw(vendor, kRunEvaluation, other).status.error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(LedgerEntries(world.ledger).size(), 5u);  // the one release and four refusals

  // After the gallery changed, a fresh evaluation no longer describes release 1: refused.
  {
    auto gallery = partner::OpenGalleryStore(partner::SqliteGallerySpec(world.dir + "/gallery.db"));
    ASSERT_TRUE(gallery.ok()) << gallery.status();
    auto subjects = (*gallery)->Subjects();
    ASSERT_TRUE(subjects.ok() && !subjects->empty());
    ASSERT_TRUE((*gallery)->DeleteSubject(subjects->front().name).ok());
  }
  ProcessResult changed =
      RunProcess({node, "releases", "show", "1", "--local", "--config", world.config}, world.dir);
  EXPECT_EQ(changed.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(changed.err, "changed since release 1 was held")) << changed.err;
  EXPECT_EQ(LedgerEntries(world.ledger).size(), 5u);
}

TEST_F(PartnerServeTest, ReleasePreviewShowsTheReleaseWithoutSendingOrCharging) {
  const PartnerWorld world = MakePartnerWorld("preview", PartnerSettings{});
  const std::string node = PartnerNodeBinary();
  // Fresh noise per preview: the histograms of some two previews differ. On this tiny gallery the
  // consistent noisy counts of ONE side are often all zero, so both sides are compared, over up to
  // four previews (a fixed or replayed noise would give four identical ones).
  std::set<std::string> histograms;
  for (int i = 0; i < 4 && histograms.size() < 2; ++i) {
    const std::string out = absl::StrCat(world.dir, "/preview", i, ".bin");
    ProcessResult preview = RunProcess({node, "evaluate-release", "--config", world.config,
                                        "--protocol", "verification", "--seed", "7", "--out", out},
                                       world.dir);
    ASSERT_EQ(preview.exit_code, 0) << preview.err;
    EXPECT_TRUE(absl::StrContains(preview.out, "NOT stored")) << preview.out;
    EXPECT_TRUE(absl::StrContains(preview.out, "not sent")) << preview.out;
    const std::string bytes = ReadText(out);
    EvaluationRelease release;
    ASSERT_TRUE(release.ParseFromString(bytes));
    EXPECT_TRUE(Allowlisted(release, world));
    EXPECT_TRUE(absl::StrContains(preview.out, Sha256Hex(bytes)));
    EXPECT_TRUE(absl::StrContains(preview.out, "genuine_histogram"));
    histograms.insert(release.genuine_histogram().SerializeAsString() +
                      release.impostor_histogram().SerializeAsString());
  }
  EXPECT_EQ(histograms.size(), 2u) << "each preview draws its own noise";
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
  EXPECT_FALSE(fs::exists(world.budget)) << "a preview does not touch the budget";
  for (const auto& e : fs::directory_iterator(world.dir)) {
    EXPECT_FALSE(absl::StartsWith(e.path().filename().string(), ".unsent-"))
        << "scratch stores are removed";
  }
}

TEST_F(PartnerServeTest, PlaintextVendorListenerOnlyWhenTheFileSaysSo) {
  PartnerSettings settings;
  settings.tls = false;
  const PartnerWorld world = MakePartnerWorld("plaintext", settings);
  START_PARTNER(server, world, "plaintext");
  EXPECT_TRUE(absl::StrContains(server.log(), "WARNING")) << server.log();
  EXPECT_TRUE(absl::StrContains(server.startup_line(), "PLAINTEXT"));
  const RawReply reply = CallRaw(VendorChannel(pki_, server.vendor_port(), "", true),
                                 kRunEvaluation, Request("r-plain").SerializeAsString());
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  const std::vector<partner::LedgerEntry> entries = LedgerEntries(world.ledger);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].vendor, "fedface-vendor");
  EXPECT_EQ(entries[0].message_sha256, Sha256Hex(reply.bytes));

  // Plaintext with two vendors cannot tell them apart: refused at start-up.
  settings.allowed_vendors = {"fedface-vendor", "other-vendor"};
  const PartnerWorld two = MakePartnerWorld("plaintext-two", settings);
  ProcessResult refused =
      RunProcess({PartnerNodeBinary(), "serve", "--config", two.config}, two.dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "exactly one vendor")) << refused.err;
}

// Plaintext only where no other host can reach it (issue 10): a plaintext vendor listener on any
// address but 127.0.0.0/8, ::1 or a unix socket is refused at start, naming both keys, before any
// listener opens.
TEST_F(PartnerServeTest, RefusesAPlaintextVendorListenerOffLoopbackAtStart) {
  PartnerSettings settings;
  settings.tls = false;
  const PartnerWorld world = MakePartnerWorld("plaintext-anywhere", settings);
  const std::string yaml = ReadText(world.config);
  const std::string local = "vendor_api:\n  listen: \"127.0.0.1:0\"";
  ASSERT_NE(yaml.find(local), std::string::npos) << yaml;
  for (const std::string listen : {"0.0.0.0:0", "[::]:0", "192.0.2.10:0"}) {
    std::string changed = yaml;
    changed.replace(changed.find(local), local.size(),
                    absl::StrCat("vendor_api:\n  listen: \"", listen, "\""));
    WriteText(world.config, changed);
    const ProcessResult refused =
        RunProcess({PartnerNodeBinary(), "serve", "--config", world.config}, world.dir);
    EXPECT_EQ(refused.exit_code, 1) << listen;
    EXPECT_TRUE(absl::StrContains(refused.err, "vendor_api.tls is false but vendor_api.listen '" +
                                                   listen + "' is not a loopback address"))
        << refused.err;
    EXPECT_FALSE(absl::StrContains(refused.out + refused.err, "vendor API on")) << refused.out;
  }
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
}

// A gzip "bomb" (64 MiB of zeros, about 64 KiB on the wire) must be refused from its headers:
// the partner never inflates it, so its peak memory does not grow by the bomb's size, and it
// still answers valid calls afterwards.
TEST_F(PartnerServeTest, RefusesCompressedRequestsBeforeInflatingThem) {
  const PartnerWorld world = MakePartnerWorld("gzip-bomb", PartnerSettings{});
  START_PARTNER(server, world, "gzip-bomb");
  const RawReply warm =
      CallRaw(Vendor(server.vendor_port()), kRunEvaluation, Request("r-warm").SerializeAsString());
  ASSERT_TRUE(warm.status.ok()) << warm.status.error_message();
  const int64_t before = PeakRssKib(server.pid());
  ASSERT_GT(before, 0);
  const std::string zeros(64 << 20, '\0');
  for (int i = 0; i < 3; ++i) {
    grpc::GenericStub stub(Vendor(server.vendor_port()));
    grpc::ClientContext context;
    context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
    grpc::Slice slice(zeros);
    grpc::ByteBuffer send(&slice, 1);
    grpc::ByteBuffer received;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, kRunEvaluation, grpc::StubOptions(), &send, &received,
                   [&done](grpc::Status s) { done.set_value(std::move(s)); });
    const grpc::Status status = done.get_future().get();
    EXPECT_FALSE(status.ok()) << "a compressed request was accepted";
    // Refused from its headers by gRPC, before the partner's code: nothing about the partner.
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(status.error_message(), "Compression algorithm 'gzip' is disabled.");
    std::cout << "[ measured ] gzip bomb " << i << ": " << status.error_code() << " "
              << status.error_message() << std::endl;
  }
  const int64_t after = PeakRssKib(server.pid());
  std::cout << "[ measured ] partner peak RSS " << before / 1024 << " MiB before, " << after / 1024
            << " MiB after three 64 MiB gzip bombs" << std::endl;
  EXPECT_LT(after - before, 32 * 1024) << "the partner inflated a compressed request";
  const RawReply valid = CallRaw(Vendor(server.vendor_port()), kRunEvaluation,
                                 Request("r-after-bombs").SerializeAsString());
  EXPECT_TRUE(valid.status.ok()) << valid.status.error_message();
  EXPECT_EQ(LedgerEntries(world.ledger).size(), 2u);
}

// A call that half-closes without a message (not a reset: its caller waits for the answer)
// gets the guard's refusal with the catalogue's text, ledgered like every refusal; calls reset
// before their message (rapid reset) get nothing and no row (PartnerAbuseTest).
TEST_F(PartnerServeTest, ACallWithoutAMessageGetsALedgeredCatalogueRefusal) {
  const PartnerWorld world = MakePartnerWorld("no-message", PartnerSettings{});
  START_PARTNER(server, world, "no-message");
  grpc::GenericStub stub(Vendor(server.vendor_port()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
  grpc::CompletionQueue cq;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&context, kRunEvaluation, &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  call->WritesDone(reinterpret_cast<void*>(2));  // half-close, no message
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "the call carries no request message");
  ExpectLedgeredRefusals(world.ledger, {status});
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// A connection flood must not take the vendor listener down for good (gRPC 1.51 stops accepting
// after accept4 fails with EMFILE): started with a soft limit of 256 open files, the partner
// raises it to the hard limit, holds 400 idle connections, and answers once they are gone.
TEST_F(PartnerServeTest, AnswersValidCallsAfterAConnectionFloodAboveTheSoftFileLimit) {
  ASSERT_EQ(access("/usr/bin/prlimit", X_OK), 0) << "prlimit (util-linux) is required";
  const PartnerWorld world = MakePartnerWorld("fd-flood", PartnerSettings{});
  PartnerServer server(world, "fd-flood", {"/usr/bin/prlimit", "--nofile=256:4096"});
  ASSERT_TRUE(server.WaitReady()) << "serve did not start:\n" << server.log();
  const pid_t pid = server.pid();
  // prlimit execs partner_node in place: the pid is the partner's.
  EXPECT_TRUE(absl::StrContains(ReadText(absl::StrCat("/proc/", pid, "/limits")),
                                "Max open files            4096                 4096"))
      << ReadText(absl::StrCat("/proc/", pid, "/limits"));
  constexpr int kConnections = 400;
  std::vector<int> sockets;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server.vendor_port()));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int base = OpenFiles(pid);
  for (int i = 0; i < kConnections; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << i;
    sockets.push_back(fd);
  }
  // Progress, not time: wait until the partner holds (accepted) the connections.
  const absl::Time give_up = absl::Now() + absl::Minutes(2);
  while (OpenFiles(pid) < base + kConnections && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const int held = OpenFiles(pid);
  std::cout << "[ measured ] partner open files: " << base << " before, " << held << " with "
            << kConnections << " idle connections" << std::endl;
  EXPECT_GE(held, base + kConnections) << "the partner did not accept every connection";
  for (int fd : sockets) close(fd);
  const RawReply reply = CallRaw(Vendor(server.vendor_port()), kRunEvaluation,
                                 Request("r-after-flood").SerializeAsString(), 120);
  EXPECT_TRUE(reply.status.ok()) << reply.status.error_message() << "\n" << server.log();
}

// k has a floor toward any vendor: a file that asks for less is refused at start, naming the key,
// before any listener opens.
// No way to switch the guard off toward a vendor: a configuration without differential privacy
// does not start, and says which key and where exact figures can be had instead.
TEST_F(PartnerServeTest, RefusesDifferentialPrivacyOffAtStart) {
  PartnerSettings settings;
  settings.differential_privacy = false;
  const PartnerWorld world = MakePartnerWorld("dp-off", settings);
  const ProcessResult refused =
      RunProcess({PartnerNodeBinary(), "serve", "--config", world.config}, world.dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "egress.differential_privacy: false is refused"))
      << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "partner_node evaluate")) << refused.err;
  EXPECT_FALSE(absl::StrContains(refused.out + refused.err, "vendor API on")) << refused.out;
  // The preview refuses it too: it shows what a vendor would receive.
  const ProcessResult preview = RunProcess({PartnerNodeBinary(), "evaluate-release", "--config",
                                            world.config, "--protocol", "verification"},
                                           world.dir);
  EXPECT_NE(preview.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(preview.err, "egress.differential_privacy")) << preview.err;
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
}

TEST_F(PartnerServeTest, RefusesAKMinimumBelowTheFloorAtStart) {
  PartnerSettings settings;
  settings.k_minimum = 4;
  const PartnerWorld world = MakePartnerWorld("k-below-floor", settings);
  const ProcessResult refused =
      RunProcess({PartnerNodeBinary(), "serve", "--config", world.config}, world.dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "egress.k_minimum")) << refused.err;
  EXPECT_FALSE(absl::StrContains(refused.out + refused.err, "vendor API on")) << refused.out;
  EXPECT_TRUE(LedgerEntries(world.ledger).empty());
}

}  // namespace
}  // namespace fedface::testing
