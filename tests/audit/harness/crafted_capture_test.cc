// The audit over captures built byte by byte: TCP reassembly (reordering, duplicates, wrapped
// sequence numbers, gaps, retransmissions that differ), the link types and IP versions, and the
// HTTP/2 / gRPC problems that real peers rarely produce.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>

#include "audit_probe.pb.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/audit/traffic_audit.h"
#include "partner_node/egress/release_composer.h"
#include "partner_node/egress/vendor_status.h"
#include "tests/audit/harness/crafted_audit_fixture.h"
#include "tests/audit/harness/pcap_craft.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {
namespace {

using partner::audit::AuditCaptures;
using partner::audit::AuditOptions;
using partner::audit::AuditReport;
using partner::audit::FormatAuditJson;
using partner::audit::FormatAuditText;
using partner::audit::GrpcMethodCatalog;
using partner::audit::IpAddress;
using partner::audit::LeakPatterns;
using partner::audit::ViolationKind;

constexpr char kCanary[] = "CANARY-d41d8cd98f00b204";
constexpr const char* kEchoPath = kCraftedEchoPath;
constexpr uint16_t kPartnerPort = kCraftedPartnerPort;

std::string Request() {
  audittest::ProbeRequest request;
  request.set_note(std::string(300, 'n'));  // long enough for the client's sequence to wrap
  return request.SerializeAsString();
}

std::string Reply(const std::string& label) {
  audittest::ProbeReply reply;
  reply.set_sequence(7);
  reply.set_payload(std::string(200, 'p'));
  reply.set_label(label);
  return reply.SerializeAsString();
}

class CraftedCaptureTest : public ::testing::Test, public CraftedAudit {
 protected:
  void SetUp() override { PrepareAudit("crafted-audit", kCanary); }

  AuditReport Audit(const PcapCrafter& pcap, const std::string& name) {
    const std::string path = dir_ + "/" + name + ".pcap";
    EXPECT_TRUE(pcap.Write(path).ok());
    return AuditFile(path);
  }

  // Audits a capture of one RunEvaluation exchange whose reply is `release` (allowlist: the
  // release type; `privacy`: the partner's egress.* settings the audit checks layout 2 against).
  absl::StatusOr<AuditReport> AuditReleaseExchange(
      const std::string& name, const fedface::v1::RunEvaluationRequest& request,
      const fedface::v1::EvaluationRelease& release,
      const std::optional<partner::DifferentialPrivacyConfig>& privacy = std::nullopt) {
    constexpr char kRunEvaluation[] = "/fedface.v1.EvaluationService/RunEvaluation";
    const std::unique_ptr<GrpcMethodCatalog> catalog =
        GrpcMethodCatalog::FromLinkedProtos({"fedface.v1"});
    if (catalog->Find(kRunEvaluation) == nullptr) {
      return absl::InternalError("the catalog does not know RunEvaluation");
    }
    const Http2Exchange x =
        MakeUnaryExchange(kRunEvaluation, request.SerializeAsString(), release.SerializeAsString());
    std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
    for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
    PcapCrafter pcap(DLT_EN10MB);
    AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
    const std::string path = dir_ + "/" + name + ".pcap";
    RETURN_IF_ERROR(pcap.Write(path));
    AuditOptions options;
    options.partner_port = kPartnerPort;
    options.patterns = &patterns_;
    options.catalog = catalog.get();
    options.allowed_types = std::set<std::string>{partner::kEvaluationReleaseType};
    options.release_privacy = privacy;
    return AuditCaptures({path}, options);
  }

  const Endpoint vendor_ = MakeEndpoint("127.0.0.1", 41000);
  const Endpoint partner_ = MakeEndpoint("127.0.0.1", kPartnerPort);
};

struct LinkCase {
  int linktype;
  const char* client_ip;
  const char* server_ip;
};

void PrintTo(const LinkCase& c, std::ostream* os) {
  *os << "link type " << c.linktype << ", " << c.client_ip << " -> " << c.server_ip;
}

class LinkTypeTest : public CraftedCaptureTest, public ::testing::WithParamInterface<LinkCase> {};

TEST_P(LinkTypeTest, ReassemblesShuffledAndDuplicatedSegmentsAndFindsASplitCanary) {
  const LinkCase& c = GetParam();
  const Endpoint vendor = MakeEndpoint(c.client_ip, 41000);
  const Endpoint partner = MakeEndpoint(c.server_ip, kPartnerPort);
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply(kCanary));
  // Pieces of 7 bytes split the canary; shuffle them and send some twice.
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 50);
  std::vector<TcpPiece> server = CutIntoPieces(false, x.server_bytes, 7);
  std::mt19937 rng(42);
  std::shuffle(server.begin() + 1, server.end(), rng);
  std::vector<TcpPiece> client = pieces;
  std::shuffle(client.begin() + 1, client.end(), rng);
  pieces = client;
  for (size_t i = 0; i < server.size(); ++i) {
    pieces.push_back(server[i]);
    if (i % 5 == 0) pieces.push_back(server[i]);  // an identical retransmission
  }
  PcapCrafter pcap(c.linktype);
  AddConnection(pcap, vendor, partner, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "shuffled");

  ASSERT_EQ(r.connections.size(), 1u) << FormatAuditText(r);
  const auto& conn = r.connections[0];
  EXPECT_TRUE(conn.partner_is_server);
  EXPECT_EQ(conn.messages[0], 1u);  // the request, decoded
  EXPECT_EQ(conn.messages[1], 1u);  // the reply, decoded
  EXPECT_GT(conn.tcp[1].reordered_segments, 0u);
  EXPECT_GT(conn.tcp[1].duplicate_bytes, 0u);
  EXPECT_EQ(conn.tcp[0].gaps + conn.tcp[1].gaps, 0u);
  EXPECT_EQ(r.bytes_left_partner, x.server_bytes.size());
  EXPECT_EQ(r.bytes_reached_partner, x.client_bytes.size());
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.sent[0].type, "fedface.audittest.ProbeReply");
  // The canary was never whole in any one segment: only reassembly finds it, and it is
  // reported once, at the message that carried it.
  EXPECT_EQ(r.violation_count, 1u) << FormatAuditText(r);
  ASSERT_EQ(Count(r, ViolationKind::kCanary), 1) << FormatAuditText(r);
  EXPECT_EQ(r.violations[0].where.http2_stream, 1u);
  EXPECT_EQ(r.violations[0].where.message_index, 0);
  EXPECT_TRUE(r.violations[0].where.from_partner);
  EXPECT_GT(r.violations[0].where.frame, 3u);
}

std::string LinkCaseName(const ::testing::TestParamInfo<LinkCase>& info) {
  static const char* const kNames[] = {"Ethernet", "LinuxCooked", "LinuxCookedV2", "RawIp"};
  return std::string(kNames[info.index]) + (info.param.client_ip[0] == '1' ? "V4" : "V6");
}

INSTANTIATE_TEST_SUITE_P(LinkTypes, LinkTypeTest,
                         ::testing::Values(LinkCase{DLT_EN10MB, "127.0.0.1", "127.0.0.1"},
                                           LinkCase{DLT_LINUX_SLL, "::1", "::1"},
                                           LinkCase{DLT_LINUX_SLL2, "10.0.0.2", "10.0.0.1"},
                                           LinkCase{DLT_RAW, "fd00::2", "fd00::1"}),
                         LinkCaseName);

TEST_F(CraftedCaptureTest, CleanCraftedExchangePasses) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "clean");
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  EXPECT_EQ(r.sent.size(), 1u);
}

TEST_F(CraftedCaptureTest, HeaderBlocksSplitIntoContinuationFramesAreDecodedAndScanned) {
  // nghttp2's encoder Huffman-codes the trailer: the canary is not in the raw bytes, only in
  // the decoded header, which spans a HEADERS and several CONTINUATION frames.
  const std::string message = std::string("failed on /gallery/") + kCanary + "/img.jpg";
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"), message, 5);
  ASSERT_EQ(x.server_bytes.find(kCanary), std::string::npos);
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "continuation");
  ASSERT_EQ(r.connections.size(), 1u);
  EXPECT_EQ(r.connections[0].rpcs.count(kEchoPath), 1u) << FormatAuditText(r);
  EXPECT_EQ(r.sent.size(), 1u);
  ASSERT_EQ(r.violation_count, 1u) << FormatAuditText(r);
  EXPECT_EQ(r.violations[0].kind, ViolationKind::kCanary);
  EXPECT_NE(r.violations[0].detail.find("grpc-message"), std::string::npos);
}

TEST_F(CraftedCaptureTest, ConnectionSplitAcrossTwoCaptureFilesIsFollowed) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply(kCanary));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 40);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 9)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  // Cut where the canary is half in each file (as `tcpdump -C` rotation would).
  const std::string a = dir_ + "/rotated0.pcap";
  const std::string b = dir_ + "/rotated1.pcap";
  const size_t cut = pcap.size() - 12;
  ASSERT_TRUE(pcap.Write(a, 0, cut).ok());
  ASSERT_TRUE(pcap.Write(b, cut).ok());
  AuditOptions options;
  options.partner_port = kPartnerPort;
  options.patterns = &patterns_;
  options.catalog = catalog_.get();
  auto r = AuditCaptures({a, b}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->connections.size(), 1u) << FormatAuditText(*r);
  EXPECT_EQ(r->sent.size(), 1u);
  EXPECT_EQ(r->sent[0].pcap, b);  // completed in the second file
  ASSERT_EQ(r->violation_count, 1u) << FormatAuditText(*r);
  EXPECT_EQ(r->violations[0].kind, ViolationKind::kCanary);
}

TEST_F(CraftedCaptureTest, MissingSegmentIsReportedAsAGapAtItsOffset) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  std::vector<TcpPiece> server = CutIntoPieces(false, x.server_bytes, 20);
  const uint64_t dropped_offset = server[3].offset;
  server.erase(server.begin() + 3);
  for (TcpPiece& p : server) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "gap");
  EXPECT_FALSE(r.passed());
  ASSERT_GE(Count(r, ViolationKind::kIncomplete), 1) << FormatAuditText(r);
  const auto gap = std::find_if(r.violations.begin(), r.violations.end(), [](const auto& v) {
    return v.kind == ViolationKind::kIncomplete && v.detail.find("missing") != std::string::npos;
  });
  ASSERT_NE(gap, r.violations.end()) << FormatAuditText(r);
  EXPECT_EQ(gap->where.stream_offset, dropped_offset);
  EXPECT_TRUE(gap->where.from_partner);
  EXPECT_EQ(r.connections[0].tcp[1].gap_bytes, 20u);
}

TEST_F(CraftedCaptureTest, RetransmissionWithDifferentBytesIsReportedAndScanned) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  std::vector<TcpPiece> server = CutIntoPieces(false, x.server_bytes, 60);
  for (TcpPiece& p : server) pieces.push_back(p);
  TcpPiece evil = server[2];
  evil.bytes.replace(10, sizeof(kCanary) - 1, kCanary);  // same place, other content
  pieces.push_back(evil);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "conflict");
  EXPECT_EQ(Count(r, ViolationKind::kRetransmissionMismatch), 1) << FormatAuditText(r);
  ASSERT_EQ(Count(r, ViolationKind::kCanary), 1) << FormatAuditText(r);
  const auto canary = std::find_if(r.violations.begin(), r.violations.end(),
                                   [](const auto& v) { return v.kind == ViolationKind::kCanary; });
  EXPECT_NE(canary->detail.find("retransmitted"), std::string::npos);
  EXPECT_EQ(canary->where.stream_offset, evil.offset + 10);
}

TEST_F(CraftedCaptureTest, CaptureThatStartedMidStreamIsNotTrusted) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  PcapCrafter pcap(DLT_EN10MB);
  // No handshake, and the first 40 bytes of each side are missing.
  pcap.AddTcp(vendor_, partner_, 1000 + 40, 5000, partner::audit::kTcpAck,
              std::string_view(x.client_bytes).substr(40));
  pcap.AddTcp(partner_, vendor_, 5000 + 40, 1000, partner::audit::kTcpAck,
              std::string_view(x.server_bytes).substr(40));
  const AuditReport r = Audit(pcap, "midstream");
  EXPECT_FALSE(r.passed());
  EXPECT_EQ(Count(r, ViolationKind::kIncomplete), 2) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("start of the TCP stream was not captured"),
            std::string::npos)
      << FormatAuditText(r);
}

TEST_F(CraftedCaptureTest, TlsTrafficIsNamedAndFailsTheAudit) {
  std::string hello("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11);
  hello += std::string(160, 'r');
  std::vector<TcpPiece> pieces = CutIntoPieces(true, hello, 200);
  std::string server_hello("\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03", 11);
  server_hello += std::string(80, 's');
  for (TcpPiece& p : CutIntoPieces(false, server_hello, 200)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, hello.size(), server_hello.size());
  const AuditReport r = Audit(pcap, "tls");
  // No key log, cut records: the connection cannot be decrypted, which fails the audit naming
  // it (crafted_tls_test.cc decrypts real records).
  EXPECT_FALSE(r.passed());
  ASSERT_GE(Count(r, ViolationKind::kTlsUndecrypted), 1) << FormatAuditText(r);
  EXPECT_EQ(Count(r, ViolationKind::kHttp2), 0) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("TLS connection 127.0.0.1:41000 -> 127.0.0.1:50051"),
            std::string::npos)
      << FormatAuditText(r);
  EXPECT_EQ(r.tls_connections, 1u);
}

TEST_F(CraftedCaptureTest, CompressedMessageCannotBeInspected) {
  Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  const std::string plain = GrpcFramed(Reply("fine"));
  const std::string compressed = GrpcFramed(Reply("fine"), 1);
  x.server_bytes.replace(x.server_bytes.find(plain), plain.size(), compressed);
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const AuditReport r = Audit(pcap, "compressed");
  EXPECT_EQ(Count(r, ViolationKind::kCompressedMessage), 1) << FormatAuditText(r);
}

TEST_F(CraftedCaptureTest, UnknownFieldsAndGarbageDoNotPassAsTheDeclaredType) {
  std::string with_extra = Reply("fine");
  with_extra += std::string("\x9a\x06\x05hello", 8);  // field 99, length-delimited
  for (const std::string& reply : {with_extra, std::string("\xff\xff\xff\xff", 4)}) {
    const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), reply);
    std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
    for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
    PcapCrafter pcap(DLT_EN10MB);
    AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
    const AuditReport r = Audit(pcap, "undecodable");
    ASSERT_EQ(Count(r, ViolationKind::kUndecodableMessage), 1) << FormatAuditText(r);
    const std::string& detail = r.violations[0].detail;
    if (reply == with_extra) {
      EXPECT_NE(detail.find("unknown field 99"), std::string::npos) << detail;
    } else {
      EXPECT_NE(detail.find("do not parse as fedface.audittest.ProbeReply"), std::string::npos)
          << detail;
    }
  }
}

// A release whose shape or values the partner's egress guard could not have produced (here:
// a face descriptor's component as the ROC AUC) is found on the wire; the same release with the
// guard's own value passes.
TEST_F(CraftedCaptureTest, AReleaseValueOffItsGridIsFound) {
  fedface::v1::RunEvaluationRequest request;
  request.set_round_id("r1");
  request.set_model_version("1.0.0");
  request.set_protocol(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
  partner::EvaluationAggregate a;
  a.protocol = request.protocol();
  a.cohort = {.subjects = 20, .mated_subjects = 20, .non_mated_subjects = 20, .images = 60};
  for (int k = 0; k < 40; ++k) a.genuine.Add(0.3 + 0.005 * k);
  for (int k = 0; k < 400; ++k) a.impostor.Add(0.6 + 0.002 * k);
  partner::EgressGuardConfig config;
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(64, '0'));
  const fedface::v1::EvaluationRelease good =
      partner::BuildRelease(request, a, partner::ApplyKMinimum(a.cohort, 5), nullptr, config, head);
  ASSERT_EQ(good.roc_auc().suppression(), fedface::v1::SUPPRESSION_NONE);
  fedface::v1::EvaluationRelease bad = good;
  bad.mutable_roc_auc()->set_value(0.0712345f);

  for (const fedface::v1::EvaluationRelease* release :
       {&good, static_cast<const fedface::v1::EvaluationRelease*>(&bad)}) {
    const absl::StatusOr<AuditReport> r =
        AuditReleaseExchange(release == &good ? "on-grid" : "off-grid", request, *release);
    ASSERT_TRUE(r.ok()) << r.status();
    if (release == &good) {
      EXPECT_TRUE(r->passed()) << FormatAuditText(*r);
    } else {
      ASSERT_EQ(Count(*r, ViolationKind::kReleaseShape), 1) << FormatAuditText(*r);
      EXPECT_NE(r->violations[0].detail.find("roc_auc is off its grid"), std::string::npos)
          << r->violations[0].detail;
    }
  }
}

// Bin layout 2 (issue 12) on the wire: a release from a correct partner passes the audit given
// the partner's configuration; one with 22 bins, a noise scale or a bound other than the
// configuration's, or any layout-2 release audited without the configuration, is a release-shape
// violation.
TEST_F(CraftedCaptureTest, ALayoutTwoReleasePassesOnlyWithThePartnersOwnNoise) {
  fedface::v1::RunEvaluationRequest request;
  request.set_round_id("r2");
  request.set_model_version("1.0.0");
  request.set_protocol(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
  request.set_seed(5);
  partner::EgressGuardConfig config;  // the defaults: c_g 10, c_i 64, share 0.8, epsilon 1
  std::vector<partner::SubjectImages> people;
  for (int k = 0; k < 40; ++k) people.push_back({k + 1, 4});
  const partner::ComparisonPlan plan = partner::PlanVerificationComparisons(
      people, partner::VerificationBoundsOf(config.dp), request.seed());
  std::vector<partner::AttributedScore> g, i;
  for (const auto& c : plan.mated)
    g.push_back({c.subject_x, c.subject_y, 0.40 + 0.001 * c.image_y});
  for (const auto& c : plan.non_mated) i.push_back({c.subject_x, c.subject_y, 0.80});
  partner::EvaluationAggregate a;
  a.protocol = request.protocol();
  a.cohort = {.subjects = 40, .mated_subjects = 40, .non_mated_subjects = 40, .images = 160};
  a.bounded = *partner::ContributionBoundedHistograms::Build(
      partner::VerificationBoundsOf(config.dp), g, i);
  for (int k = 0; k < 40; ++k) a.failure_rates.Add(4, 0);
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(64, '0'));
  partner::SeededNoiseSource noise(3);
  const absl::StatusOr<partner::ComposedRelease> composed =
      partner::ComposeRelease(config, request, a, noise, head);
  ASSERT_TRUE(composed.ok()) << composed.status();
  fedface::v1::EvaluationRelease good;
  ASSERT_TRUE(good.ParseFromString(composed->bytes));
  ASSERT_EQ(good.bin_edges_version(), 2u);

  const absl::StatusOr<AuditReport> passed =
      AuditReleaseExchange("layout2-good", request, good, config.dp);
  ASSERT_TRUE(passed.ok()) << passed.status();
  EXPECT_TRUE(passed->passed()) << FormatAuditText(*passed);

  struct Case {
    const char* name;
    std::function<void(fedface::v1::EvaluationRelease&)> mutate;
    const char* detail;
  } cases[] = {
      {"22-bins", [](auto& r) { r.mutable_genuine_histogram()->add_counts(0); },
       "has 22 values, expected 21"},
      {"other-scale",
       [](auto& r) {
         r.mutable_privacy()->set_impostor_noise_scale(r.privacy().impostor_noise_scale() / 4);
       },
       "impostor_noise_scale is not what the partner's configuration implies"},
      {"other-bound", [](auto& r) { r.mutable_privacy()->set_impostor_contribution_bound(8); },
       "impostor_contribution_bound is not what the partner's configuration implies"},
      {"layout-3", [](auto& r) { r.set_bin_edges_version(3); }, "bin layout version 3"},
  };
  for (const Case& c : cases) {
    fedface::v1::EvaluationRelease bad = good;
    c.mutate(bad);
    const absl::StatusOr<AuditReport> r = AuditReleaseExchange(c.name, request, bad, config.dp);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(Count(*r, ViolationKind::kReleaseShape), 1) << c.name << FormatAuditText(*r);
    EXPECT_NE(r->violations[0].detail.find(c.detail), std::string::npos)
        << c.name << ": " << r->violations[0].detail;
  }
  // The same good release from a partner configured otherwise (another split) fails, and so
  // does an audit that was not given the configuration at all.
  partner::DifferentialPrivacyConfig other = config.dp;
  other.impostor_epsilon_share = 0.5;
  const absl::StatusOr<AuditReport> other_config =
      AuditReleaseExchange("layout2-other-config", request, good, other);
  ASSERT_TRUE(other_config.ok());
  EXPECT_EQ(Count(*other_config, ViolationKind::kReleaseShape), 1);
  const absl::StatusOr<AuditReport> no_config =
      AuditReleaseExchange("layout2-no-config", request, good);
  ASSERT_TRUE(no_config.ok());
  ASSERT_EQ(Count(*no_config, ViolationKind::kReleaseShape), 1);
  EXPECT_NE(no_config->violations[0].detail.find("none was given"), std::string::npos);
}

// A refusal is part of what leaves: the partner's guard records it in the ledger as the
// vendor receives it (grpc-status and the percent-decoded grpc-message), and the audit matches
// the trailers against that entry; a refusal the ledger lacks is a mismatch.
TEST_F(CraftedCaptureTest, RefusalsOnTheWireAreMatchedWithTheLedger) {
  const std::string text = "held for approval: the partner reviews each release; 100% sure";
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), "",
                                            "held for approval: the partner reviews each release; "
                                            "100%25 sure",
                                            0, /*grpc_status=*/9);
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const std::string path = dir_ + "/refusal.pcap";
  ASSERT_TRUE(pcap.Write(path).ok());
  const std::string bytes =
      partner::RefusalBytes(absl::FailedPreconditionError(text));  // "9 held for approval..."
  for (const bool ledgered : {true, false}) {
    partner::audit::LoadedLedger ledger;
    ledger.format = "test";
    if (ledgered) {
      ledger.records.push_back(
          {1, partner::kRefusalLedgerType, static_cast<int64_t>(bytes.size()), Sha256Hex(bytes)});
    }
    AuditOptions options;
    options.partner_port = kPartnerPort;
    options.patterns = &patterns_;
    options.catalog = catalog_.get();
    options.ledger = ledger;
    const absl::StatusOr<AuditReport> r = AuditCaptures({path}, options);
    ASSERT_TRUE(r.ok()) << r.status();
    if (ledgered) {
      EXPECT_TRUE(r->passed()) << FormatAuditText(*r);
      EXPECT_EQ(r->ledger_matched, 1u);
    } else {
      ASSERT_EQ(Count(*r, ViolationKind::kLedgerMismatch), 1) << FormatAuditText(*r);
      EXPECT_NE(r->violations[0].detail.find("sent grpc.Status"), std::string::npos)
          << r->violations[0].detail;
    }
  }
}

// Rate-limit refusals are recorded once per vendor, kind and window (vendor_status.h): the
// audit accepts any number of identical fixed-text rate-limit trailers against a window row,
// and still matches every other refusal one-to-one. Negative controls: rate-limit trailers with
// no window row, and a window row no trailer shows, are mismatches.
TEST_F(CraftedCaptureTest, RateLimitRefusalsAreMatchedOncePerWindowRow) {
  const absl::Status held = absl::FailedPreconditionError("held for approval: retry later");
  const absl::Status limited = absl::ResourceExhaustedError(partner::kRateLimitedText);
  PcapCrafter pcap(DLT_EN10MB);
  auto add_call = [&](uint16_t vendor_port, const absl::Status& status) {
    const Http2Exchange x =
        MakeUnaryExchange(kEchoPath, Request(), "", std::string(status.message()), 0,
                          static_cast<int>(status.code()));
    std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 1000);
    for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 1000)) pieces.push_back(p);
    AddConnection(pcap, MakeEndpoint("127.0.0.1", vendor_port), partner_, pieces,
                  x.client_bytes.size(), x.server_bytes.size());
  };
  add_call(41000, held);
  constexpr int kRateLimited = 6;
  for (int i = 0; i < kRateLimited; ++i) add_call(41001 + i, limited);
  const std::string path = dir_ + "/rate-limited.pcap";
  ASSERT_TRUE(pcap.Write(path).ok());
  auto record = [](int64_t seq, const char* type, const absl::Status& status) {
    const std::string bytes = partner::RefusalBytes(status);
    return partner::audit::LedgerRecord{seq, type, static_cast<int64_t>(bytes.size()),
                                        Sha256Hex(bytes)};
  };
  auto audit = [&](std::vector<partner::audit::LedgerRecord> records) {
    partner::audit::LoadedLedger ledger;
    ledger.format = "test";
    ledger.records = std::move(records);
    AuditOptions options;
    options.partner_port = kPartnerPort;
    options.patterns = &patterns_;
    options.catalog = catalog_.get();
    options.ledger = ledger;
    absl::StatusOr<AuditReport> r = AuditCaptures({path}, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : AuditReport{};
  };
  const auto held_row = record(1, partner::kRefusalLedgerType, held);
  const auto window_row = record(2, partner::kRateLimitLedgerType, limited);

  // One window row covers the six trailers; the held refusal is matched one-to-one.
  AuditReport r = audit({held_row, window_row});
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  EXPECT_EQ(r.ledger_matched, 2u);
  EXPECT_EQ(r.rate_limit_refusals, static_cast<size_t>(kRateLimited));
  EXPECT_NE(FormatAuditText(r).find("6 rate-limit refusals on window rows"), std::string::npos);

  // Negative control: the same trailers without a window row fail the audit.
  r = audit({held_row});
  ASSERT_EQ(Count(r, ViolationKind::kLedgerMismatch), 1) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("6 rate-limit refusal(s)"), std::string::npos)
      << r.violations[0].detail;
  EXPECT_NE(r.violations[0].detail.find("no rate-limit window row"), std::string::npos);

  // A window row recorded as a plain refusal row does not cover them either.
  r = audit({held_row, record(2, partner::kRefusalLedgerType, limited)});
  EXPECT_FALSE(r.passed());

  // More window rows than the capture shows trailers for: the extra row was not seen.
  std::vector<partner::audit::LedgerRecord> rows = {held_row};
  for (int i = 0; i < kRateLimited + 1; ++i) {
    rows.push_back(record(2 + i, partner::kRateLimitLedgerType, limited));
  }
  r = audit(rows);
  EXPECT_EQ(Count(r, ViolationKind::kLedgerMismatch), 1) << FormatAuditText(r);

  // The held refusal is still matched one-to-one: a window row does not stand in for it.
  r = audit({window_row});
  EXPECT_EQ(Count(r, ViolationKind::kLedgerMismatch), 1) << FormatAuditText(r);
}

TEST_F(CraftedCaptureTest, TruncatedCaptureFileIsReported) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, partner_, pieces, x.client_bytes.size(), x.server_bytes.size());
  const std::string path = dir_ + "/truncated.pcap";
  ASSERT_TRUE(pcap.Write(path).ok());
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 30);
  const AuditReport r = AuditFile(path);
  EXPECT_GE(Count(r, ViolationKind::kCaptureDamaged), 1) << FormatAuditText(r);
}

// A model pull as the partner makes it: its request carries the canary, the registry's reply
// a JPEG header. The connection is added to `pcap`.
Http2Exchange AddPull(PcapCrafter& pcap, const Endpoint& partner, const Endpoint& registry) {
  audittest::ProbeRequest request;
  request.set_note(std::string("pull for ") + kCanary);
  audittest::ProbeReply reply;
  reply.set_payload(std::string("\xFF\xD8\xFF\xE0 a jpeg from the vendor", 26));
  const Http2Exchange x =
      MakeUnaryExchange(kEchoPath, request.SerializeAsString(), reply.SerializeAsString());
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  AddConnection(pcap, partner, registry, pieces, x.client_bytes.size(), x.server_bytes.size());
  return x;
}

// The options of an audit of pulls: only ProbeReply allowed, an empty ledger (client calls are
// not ledgered).
AuditOptions PullAuditOptions(const LeakPatterns& patterns, GrpcMethodCatalog& catalog) {
  AuditOptions options;
  options.partner_port = kPartnerPort;
  options.patterns = &patterns;
  options.catalog = &catalog;
  options.allowed_types = std::set<std::string>{"fedface.audittest.ProbeReply"};
  options.ledger = partner::audit::LoadedLedger{};
  return options;
}

TEST_F(CraftedCaptureTest, WithItsAddressEverythingThePartnerSendsIsAudited) {
  // The partner (10.0.0.1) opens a connection to the vendor's registry, as a model pull does:
  // its requests left it; the vendor's replies (even a JPEG) did not.
  const Endpoint partner = MakeEndpoint("10.0.0.1", 40123);
  const Endpoint registry = MakeEndpoint("10.0.0.9", 7443);
  PcapCrafter pcap(DLT_EN10MB);
  const Http2Exchange x = AddPull(pcap, partner, registry);
  pcap.AddUdp(MakeEndpoint("10.0.0.1", 5353), MakeEndpoint("10.0.0.255", 5353), "a datagram");
  pcap.AddUdp(MakeEndpoint("10.0.0.7", 5353), MakeEndpoint("10.0.0.255", 5353), "not ours");
  const std::string path = dir_ + "/partner-ip.pcap";
  ASSERT_TRUE(pcap.Write(path).ok());

  AuditOptions options = PullAuditOptions(patterns_, *catalog_);
  options.partner_ips = {*IpAddress::Parse("10.0.0.1")};
  auto r = AuditCaptures({path}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->connections.size(), 1u);
  EXPECT_TRUE(r->connections[0].partner_is_client);
  EXPECT_EQ(r->bytes_left_partner, x.client_bytes.size() + 10);
  ASSERT_EQ(r->sent.size(), 1u);
  EXPECT_EQ(r->sent[0].type, "fedface.audittest.ProbeRequest");
  EXPECT_FALSE(r->sent[0].ledger_scope);
  EXPECT_EQ(Count(*r, ViolationKind::kCanary), 1) << FormatAuditText(*r);
  EXPECT_EQ(Count(*r, ViolationKind::kTypeNotAllowed), 1) << FormatAuditText(*r);
  EXPECT_EQ(Count(*r, ViolationKind::kUnaudited), 1) << FormatAuditText(*r);  // our datagram
  EXPECT_EQ(Count(*r, ViolationKind::kImageSignature), 0) << FormatAuditText(*r);
  EXPECT_EQ(Count(*r, ViolationKind::kLedgerMismatch), 0) << FormatAuditText(*r);
  EXPECT_EQ(r->violation_count, 3u) << FormatAuditText(*r);
}

TEST_F(CraftedCaptureTest, OnLoopbackTheRegistryPortMakesThePartnerTheClientOfItsPulls) {
  // Partner and registry share 127.0.0.1 (the demo): the registry port says who is who. The
  // partner's request left it; the registry's reply (even a JPEG) did not.
  const Endpoint partner = MakeEndpoint("127.0.0.1", 40123);
  const Endpoint registry = MakeEndpoint("127.0.0.1", 7443);
  PcapCrafter pcap(DLT_EN10MB);
  const Http2Exchange x = AddPull(pcap, partner, registry);
  const std::string path = dir_ + "/registry-port.pcap";
  ASSERT_TRUE(pcap.Write(path).ok());

  AuditOptions options = PullAuditOptions(patterns_, *catalog_);
  options.registry_ports = {7443};
  auto r = AuditCaptures({path}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->connections.size(), 1u);
  EXPECT_TRUE(r->connections[0].partner_is_client);
  EXPECT_FALSE(r->connections[0].partner_is_server);
  EXPECT_EQ(r->bytes_left_partner, x.client_bytes.size());
  ASSERT_EQ(r->sent.size(), 1u);
  EXPECT_EQ(r->sent[0].type, "fedface.audittest.ProbeRequest");
  EXPECT_FALSE(r->sent[0].ledger_scope);
  EXPECT_EQ(Count(*r, ViolationKind::kCanary), 1) << FormatAuditText(*r);
  EXPECT_EQ(Count(*r, ViolationKind::kTypeNotAllowed), 1) << FormatAuditText(*r);
  EXPECT_EQ(Count(*r, ViolationKind::kImageSignature), 0) << FormatAuditText(*r);
  EXPECT_EQ(r->violation_count, 2u) << FormatAuditText(*r);

  // With the configuration's allowlist (the loopback demo: --config and --registry-port) the
  // pull is the partner's own outgoing call to its registry, not a peer opening one to it.
  partner::audit::PeerAllowlist peers;
  ASSERT_TRUE(partner::audit::AddOutgoingPeer("127.0.0.1:7443", "vendor.address", &peers).ok());
  peers.incoming_ports.insert(kPartnerPort);
  options.peers = peers;
  auto with_peers = AuditCaptures({path}, options);
  ASSERT_TRUE(with_peers.ok()) << with_peers.status();
  EXPECT_EQ(Count(*with_peers, ViolationKind::kUnexpectedPeer), 0) << FormatAuditText(*with_peers);
  EXPECT_EQ(with_peers->violation_count, 2u) << FormatAuditText(*with_peers);
}

// The partner at 10.0.0.1 (vendor-facing port kPartnerPort) with a registry at 10.0.0.9:7443.
class PeerAllowlistTest : public CraftedCaptureTest {
 protected:
  // A clean unary call from client to server, whole.
  static void AddCall(PcapCrafter& pcap, const Endpoint& client, const Endpoint& server) {
    const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
    std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
    for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
    AddConnection(pcap, client, server, pieces, x.client_bytes.size(), x.server_bytes.size());
  }

  AuditReport AuditPeers(const PcapCrafter& pcap, const std::string& name,
                         std::optional<partner::audit::PeerAllowlist> peers) {
    const std::string path = dir_ + "/" + name + ".pcap";
    EXPECT_TRUE(pcap.Write(path).ok());
    AuditOptions options;
    options.partner_port = kPartnerPort;
    options.partner_ips = {*IpAddress::Parse("10.0.0.1")};
    options.patterns = &patterns_;
    options.catalog = catalog_.get();
    options.peers = std::move(peers);
    options.capture_mode = partner::audit::CaptureMode::kNamespace;
    auto r = AuditCaptures({path}, options);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : AuditReport{};
  }

  // As `partner_node audit --config` makes it: the registry, and the vendor-facing port.
  static partner::audit::PeerAllowlist RegistryAndVendorPort() {
    partner::audit::PeerAllowlist peers;
    EXPECT_TRUE(partner::audit::AddOutgoingPeer("10.0.0.9:7443", "vendor.address", &peers).ok());
    peers.incoming_ports.insert(kPartnerPort);
    return peers;
  }

  const Endpoint registry_ = MakeEndpoint("10.0.0.9", 7443);
  const Endpoint coordinator_ = MakeEndpoint("10.0.0.9", 41000);
  const Endpoint partner_listener_ = MakeEndpoint("10.0.0.1", kPartnerPort);
  const Endpoint partner_client_ = MakeEndpoint("10.0.0.1", 40123);
};

TEST_F(PeerAllowlistTest, RegistryPullAndIncomingCoordinatorCallPass) {
  PcapCrafter pcap(DLT_EN10MB);
  AddCall(pcap, partner_client_, registry_);
  AddCall(pcap, coordinator_, partner_listener_);
  const AuditReport r = AuditPeers(pcap, "allowed-peers", RegistryAndVendorPort());
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  EXPECT_EQ(r.connections.size(), 2u);
  const std::string text = FormatAuditText(r);
  EXPECT_NE(text.find("peers: outgoing only to 10.0.0.9:7443 (vendor.address); incoming only on "
                      "port 50051 from any address"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("PASS; capture: the partner's own network namespace"), std::string::npos)
      << text;
}

TEST_F(PeerAllowlistTest, ConnectionToAnotherHostOrPortIsAnUnexpectedPeerNamingIt) {
  PcapCrafter pcap(DLT_EN10MB);
  AddCall(pcap, partner_client_, registry_);
  AddCall(pcap, MakeEndpoint("10.0.0.1", 40124), MakeEndpoint("10.0.0.9", 8080));     // other port
  AddCall(pcap, MakeEndpoint("10.0.0.1", 40125), MakeEndpoint("203.0.113.5", 7443));  // other host
  const AuditReport r = AuditPeers(pcap, "other-peers", RegistryAndVendorPort());
  EXPECT_EQ(r.violation_count, 2u) << FormatAuditText(r);
  ASSERT_EQ(Count(r, ViolationKind::kUnexpectedPeer), 2) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("10.0.0.1:40124 -> 10.0.0.9:8080"), std::string::npos)
      << r.violations[0].detail;
  EXPECT_EQ(r.violations[0].where.connection, 2);
  EXPECT_TRUE(r.violations[0].where.from_partner);
  EXPECT_NE(r.violations[1].detail.find("-> 203.0.113.5:7443"), std::string::npos);
  EXPECT_NE(FormatAuditJson(r).find("\"unexpected-peer\""), std::string::npos);
}

TEST_F(PeerAllowlistTest, IncomingConnectionOnAnotherPortOrFromAnotherPeerFails) {
  PcapCrafter pcap(DLT_EN10MB);
  AddCall(pcap, coordinator_, partner_listener_);
  AddCall(pcap, coordinator_, MakeEndpoint("10.0.0.1", 2222));  // not the vendor-facing port
  AddCall(pcap, MakeEndpoint("10.0.0.77", 41001), partner_listener_);
  // Any address may reach the vendor-facing port...
  AuditReport r = AuditPeers(pcap, "incoming", RegistryAndVendorPort());
  ASSERT_EQ(Count(r, ViolationKind::kUnexpectedPeer), 1) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("10.0.0.9:41000 -> 10.0.0.1:2222"), std::string::npos)
      << r.violations[0].detail;
  EXPECT_FALSE(r.violations[0].where.from_partner);
  // ... unless HOST:* narrows it to the coordinator's address.
  partner::audit::PeerAllowlist narrowed = RegistryAndVendorPort();
  ASSERT_TRUE(partner::audit::AddAllowedPeer("10.0.0.9:*", &narrowed).ok());
  r = AuditPeers(pcap, "incoming-narrowed", narrowed);
  EXPECT_EQ(Count(r, ViolationKind::kUnexpectedPeer), 2) << FormatAuditText(r);
  EXPECT_NE(r.violations[1].detail.find("10.0.0.77:41001 -> 10.0.0.1:50051"), std::string::npos)
      << r.violations[1].detail;
}

TEST_F(PeerAllowlistTest, NonTcpFromThePartnerIsAnUnexpectedPeerButNeighbourDiscoveryIsNot) {
  PcapCrafter pcap(DLT_EN10MB);
  AddCall(pcap, partner_client_, registry_);
  pcap.AddUdp(MakeEndpoint("10.0.0.1", 5353), MakeEndpoint("10.0.0.53", 53), "a dns query");
  const AuditReport r = AuditPeers(pcap, "udp", RegistryAndVendorPort());
  EXPECT_EQ(r.violation_count, 1u) << FormatAuditText(r);
  ASSERT_EQ(Count(r, ViolationKind::kUnexpectedPeer), 1) << FormatAuditText(r);
  EXPECT_NE(r.violations[0].detail.find("to 10.0.0.53 port 53"), std::string::npos)
      << r.violations[0].detail;
  EXPECT_TRUE(partner::audit::IsLinkHousekeeping(58, std::string("\x87\0", 2)));   // NS
  EXPECT_TRUE(partner::audit::IsLinkHousekeeping(58, std::string("\x85\0", 2)));   // RS
  EXPECT_FALSE(partner::audit::IsLinkHousekeeping(58, std::string("\x80\0", 2)));  // echo
  EXPECT_FALSE(partner::audit::IsLinkHousekeeping(17, std::string("\x87\0", 2)));
}

TEST_F(PeerAllowlistTest, WithoutAnAllowlistPeersAreNotCheckedAndTheReportSaysSo) {
  PcapCrafter pcap(DLT_EN10MB);
  AddCall(pcap, partner_client_, registry_);
  AddCall(pcap, MakeEndpoint("10.0.0.1", 40124), MakeEndpoint("203.0.113.5", 7443));
  AddCall(pcap, coordinator_, MakeEndpoint("10.0.0.1", 2222));
  const AuditReport r = AuditPeers(pcap, "unchecked", std::nullopt);
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  const std::string text = FormatAuditText(r);
  EXPECT_NE(text.find("\npeers: not checked\n"), std::string::npos) << text;
}

TEST_F(PeerAllowlistTest, AllowPeerTextIsParsedOrRefusedNamingIt) {
  partner::audit::PeerAllowlist peers;
  ASSERT_TRUE(partner::audit::AddAllowedPeer("10.0.0.9:7443", &peers).ok());
  ASSERT_TRUE(partner::audit::AddAllowedPeer("[::1]:7443", &peers).ok());
  ASSERT_TRUE(partner::audit::AddAllowedPeer("10.0.0.8:*", &peers).ok());
  ASSERT_EQ(peers.outgoing.size(), 2u);
  EXPECT_TRUE(peers.AllowsOutgoing(MakeEndpoint("::1", 7443)));
  EXPECT_FALSE(peers.AllowsOutgoing(MakeEndpoint("10.0.0.8", 7443)));
  ASSERT_EQ(peers.incoming_from.size(), 1u);
  for (const char* bad : {"10.0.0.9", "10.0.0.9:0", "10.0.0.9:70000", "10.0.0.9:x", "::1:80"}) {
    absl::Status s = partner::audit::AddAllowedPeer(bad, &peers);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
  EXPECT_EQ(partner::audit::ListenPort("10.0.0.1:7543"), std::optional<uint16_t>(7543));
  EXPECT_EQ(partner::audit::ListenPort("127.0.0.1:0"), std::nullopt);
  EXPECT_EQ(partner::audit::ListenPort("unix:/tmp/x.sock"), std::nullopt);
}

TEST_F(CraftedCaptureTest, CaptureWithoutThePartnersTrafficFails) {
  const Http2Exchange x = MakeUnaryExchange(kEchoPath, Request(), Reply("fine"));
  std::vector<TcpPiece> pieces = CutIntoPieces(true, x.client_bytes, 100);
  for (TcpPiece& p : CutIntoPieces(false, x.server_bytes, 100)) pieces.push_back(p);
  PcapCrafter pcap(DLT_EN10MB);
  AddConnection(pcap, vendor_, MakeEndpoint("127.0.0.1", 9999), pieces, x.client_bytes.size(),
                x.server_bytes.size());
  const AuditReport r = Audit(pcap, "elsewhere");
  EXPECT_EQ(r.violation_count, 1u) << FormatAuditText(r);
  EXPECT_EQ(Count(r, ViolationKind::kNoPartnerTraffic), 1) << FormatAuditText(r);
  EXPECT_EQ(r.foreign_connections, 1u);
}

TEST_F(CraftedCaptureTest, MissingCaptureFileIsAnErrorNamingIt) {
  AuditOptions options;
  options.partner_port = kPartnerPort;
  options.patterns = &patterns_;
  options.catalog = catalog_.get();
  auto report = AuditCaptures({dir_ + "/absent.pcap"}, options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("absent.pcap"), std::string::npos);
}

}  // namespace
}  // namespace fedface::audit_test
