// The audit over real traffic: a gRPC "partner" and "vendor" talk plaintext HTTP/2 on loopback
// while tcpdump captures it; the capture is then audited. Clean traffic passes; each planted leak
// (canary, embedding bytes, JPEG header, unknown method, non-allowlisted type, ledger mismatch)
// makes it fail, with the place it happened. Skips with a message when tcpdump cannot capture.
#include "partner_node/audit/traffic_audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdio.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/audit/audit_inputs.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/audit/harness/probe_partner.h"
#include "tests/support/packet_capture.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {
namespace {

using audittest::ProbeReply;
using audittest::ProbeRequest;
using partner::audit::AuditCaptures;
using partner::audit::AuditOptions;
using partner::audit::AuditReport;
using partner::audit::FormatAuditText;
using partner::audit::GrpcMethodCatalog;
using partner::audit::LeakPatterns;
using partner::audit::LedgerRecord;
using partner::audit::LoadedLedger;
using partner::audit::ViolationKind;

constexpr char kReplyType[] = "fedface.audittest.ProbeReply";

// Lower-case letters only: never an image signature, never an embedding run, never a canary.
std::string Letters(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::string s(n, 'a');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

struct Capture {
  std::string dir;
  std::string pcap;
  int port = 0;
  std::vector<std::string> sent_replies;  // as the partner serialized them, in order
  int64_t dropped = -1;                   // packets tcpdump says the kernel dropped
};

// Runs `exchange` between a fresh probe partner (answering per `plan`) and a vendor client while
// tcpdump captures the partner's port.
absl::StatusOr<Capture> CaptureExchange(const std::string& name, ProbePlan plan,
                                        const std::function<void(ProbeVendor&)>& exchange) {
  Capture c;
  c.dir = testing::MakeTempDir(name);
  if (c.dir.empty()) return absl::InternalError("no temporary directory");
  c.pcap = c.dir + "/" + name + ".pcap";
  ASSIGN_OR_RETURN(auto partner, ProbePartner::Start(std::move(plan)));
  c.port = partner->port();
  ASSIGN_OR_RETURN(auto tcpdump, testing::PacketCapture::Start({}, "lo", c.pcap,
                                                               absl::StrCat("tcp port ", c.port)));
  {
    ProbeVendor vendor(c.port);
    exchange(vendor);
    vendor.Close();
  }
  ASSIGN_OR_RETURN(auto summary, tcpdump->Stop());
  std::cout << "tcpdump: " << summary.text;
  c.dropped = summary.dropped_by_kernel;
  testing::RecordCheckMode("loopback capture of a probe partner's port, plaintext");
  c.sent_replies = partner->SentReplies();
  return c;
}

#define CAPTURE_OR_SKIP(var, expr)                                                       \
  auto var##_or = (expr);                                                                \
  if (absl::IsUnavailable(var##_or.status())) {                                          \
    FEDFACE_SKIP_OR_FAIL("cannot capture loopback traffic here: " << var##_or.status()); \
  }                                                                                      \
  ASSERT_TRUE(var##_or.ok()) << var##_or.status();                                       \
  const Capture& var = *var##_or

LoadedLedger LedgerOf(const std::vector<std::string>& replies) {
  LoadedLedger ledger;
  ledger.format = "test";
  int64_t seq = 0;
  for (const std::string& r : replies) {
    ledger.records.push_back({++seq, kReplyType, static_cast<int64_t>(r.size()), Sha256Hex(r)});
  }
  return ledger;
}

class TrafficAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    catalog_ = GrpcMethodCatalog::FromLinkedProtos({"fedface.audittest", "fedface.v1"});
    ASSERT_NE(catalog_->Find("/fedface.audittest.AuditProbe/Stream"), nullptr);
    std::random_device rd;
    std::mt19937_64 rng((uint64_t{rd()} << 32) | rd());
    for (int i = 0; i < 3; ++i) {
      canaries_.push_back(absl::StrCat("FFCANARY-", absl::Hex(rng(), absl::kZeroPad16)));
    }
    std::normal_distribution<float> normal(0.f, 0.09f);
    for (int i = 0; i < 4; ++i) {
      std::string bytes(128 * sizeof(float), '\0');
      for (int k = 0; k < 128; ++k) {
        const float v = normal(rng);
        std::memcpy(bytes.data() + k * sizeof(float), &v, sizeof(float));
      }
      embeddings_.push_back(bytes);
    }
  }

  // Audits with the canaries and embeddings; options may add an allowlist or a ledger.
  AuditReport Audit(const Capture& c, std::optional<std::set<std::string>> allowed = {},
                    std::optional<LoadedLedger> ledger = {}) {
    LeakPatterns patterns;
    for (const std::string& t : canaries_) EXPECT_TRUE(patterns.AddCanary(t).ok());
    for (size_t i = 0; i < embeddings_.size(); ++i) {
      EXPECT_TRUE(patterns.AddEmbedding(embeddings_[i], absl::StrCat("embedding ", i)).ok());
    }
    patterns.Seal();
    AuditOptions options;
    options.partner_port = static_cast<uint16_t>(c.port);
    options.patterns = &patterns;
    options.catalog = catalog_.get();
    options.allowed_types = std::move(allowed);
    options.ledger = std::move(ledger);
    auto report = AuditCaptures({c.pcap}, options);
    EXPECT_TRUE(report.ok()) << report.status();
    if (!report.ok()) return AuditReport{};
    std::cout << FormatAuditText(*report);
    return *report;
  }

  static std::vector<partner::audit::Violation> Of(const AuditReport& r, ViolationKind kind) {
    std::vector<partner::audit::Violation> out;
    for (const auto& v : r.violations) {
      if (v.kind == kind) out.push_back(v);
    }
    return out;
  }

  std::unique_ptr<GrpcMethodCatalog> catalog_;
  std::vector<std::string> canaries_;
  std::vector<std::string> embeddings_;
};

TEST_F(TrafficAuditTest, CleanExchangePassesWithAllowlistAndLedger) {
  ProbePlan plan;
  plan.padding_metadata = Letters(1, 40000);  // 40 KB header blocks (HPACK, large frames)
  plan.fill = [](const ProbeRequest& request, int index, ProbeReply* reply) {
    reply->set_sequence(static_cast<uint64_t>(index));
    reply->set_payload(Letters(index + 7, request.count() ? 30000 : 100));
    reply->set_label("release");
  };
  // The vendor may send anything TO the partner: a PNG header and a canary-like token inbound
  // are not leaks.
  const std::string inbound = std::string("\x89PNG\r\n\x1A\n", 8) + canaries_[0];
  CAPTURE_OR_SKIP(c, CaptureExchange("clean", plan, [&](ProbeVendor& vendor) {
                    for (int i = 0; i < 3; ++i) {
                      ProbeReply reply;
                      const grpc::Status status = vendor.Echo("hello", &reply, inbound);
                      ASSERT_TRUE(status.ok()) << status.error_message();
                    }
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(5, &replies).ok());
                    ASSERT_EQ(replies.size(), 5u);
                  }));
  ASSERT_EQ(c.sent_replies.size(), 8u);
  const AuditReport r = Audit(c, std::set<std::string>{kReplyType}, LedgerOf(c.sent_replies));
  EXPECT_TRUE(r.passed());
  EXPECT_EQ(r.sent.size(), 8u);
  EXPECT_EQ(r.ledger_matched, 8u);
  ASSERT_GE(r.connections.size(), 1u);
  uint64_t requests = 0;
  for (const auto& conn : r.connections) requests += conn.messages[0];
  EXPECT_EQ(requests, 4u);
  EXPECT_GT(r.bytes_left_partner, 5u * 30000);
  EXPECT_GT(r.bytes_reached_partner, 3u * inbound.size());
}

TEST_F(TrafficAuditTest, CanaryPlantedInAReplyFails) {
  ProbePlan plan;
  const std::string canary = canaries_[1];
  plan.fill = [&](const ProbeRequest&, int index, ProbeReply* reply) {
    reply->set_sequence(static_cast<uint64_t>(index));
    reply->set_payload(Letters(index, 500));
    if (index == 2) reply->set_label("subject folder " + canary);
  };
  CAPTURE_OR_SKIP(c, CaptureExchange("canary", plan, [](ProbeVendor& vendor) {
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(4, &replies).ok());
                  }));
  const AuditReport r = Audit(c);
  EXPECT_FALSE(r.passed());
  const auto found = Of(r, ViolationKind::kCanary);
  ASSERT_EQ(found.size(), 1u);  // found raw and decoded, reported once
  EXPECT_NE(found[0].detail.find(canary), std::string::npos);
  EXPECT_NE(found[0].detail.find(kReplyType), std::string::npos);
  EXPECT_EQ(found[0].where.pcap, c.pcap);
  EXPECT_GT(found[0].where.frame, 0u);
  EXPECT_NE(found[0].where.http2_stream, 0u);
  EXPECT_EQ(found[0].where.message_index, 2);
  EXPECT_TRUE(found[0].where.from_partner);
  EXPECT_EQ(r.violation_count, 1u);
}

TEST_F(TrafficAuditTest, CanaryInAnErrorMessageFailsThoughHpackHidesItFromTheRawBytes) {
  ProbePlan plan;
  plan.error_message = absl::StrCat("cannot read /gallery/", canaries_[2], "/1.jpg");
  CAPTURE_OR_SKIP(c, CaptureExchange("error-canary", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    EXPECT_EQ(vendor.Echo("hello", &reply).error_code(),
                              grpc::StatusCode::INVALID_ARGUMENT);
                  }));
  const AuditReport r = Audit(c);
  const auto found = Of(r, ViolationKind::kCanary);
  ASSERT_GE(found.size(), 1u);
  EXPECT_NE(found[0].detail.find("grpc-message"), std::string::npos) << found[0].detail;
}

TEST_F(TrafficAuditTest, ReplyCarryingEmbeddingBytesFails) {
  // The negative control: the partner "accidentally" sends 40 bytes of a stored embedding.
  ProbePlan plan;
  const std::string leaked = embeddings_[2].substr(37, 40);
  plan.fill = [&](const ProbeRequest&, int, ProbeReply* reply) {
    reply->set_payload(Letters(3, 300) + leaked + Letters(4, 300));
  };
  CAPTURE_OR_SKIP(c, CaptureExchange("embedding", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    ASSERT_TRUE(vendor.Echo("hello", &reply).ok());
                  }));
  const AuditReport r = Audit(c);
  const auto found = Of(r, ViolationKind::kStoredBytes);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].detail.find("embedding 2"), std::string::npos) << found[0].detail;
  // 40 bytes, or a byte or two more when the noise around them happens to continue the run.
  EXPECT_NE(found[0].detail.find(" consecutive bytes of embedding 2 (its bytes 3"),
            std::string::npos)
      << found[0].detail;
  EXPECT_EQ(found[0].where.message_index, 0);
}

TEST_F(TrafficAuditTest, ReplyCarryingAJpegFails) {
  ProbePlan plan;
  plan.fill = [](const ProbeRequest&, int, ProbeReply* reply) {
    reply->set_payload(std::string("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00", 11) + Letters(5, 200));
  };
  CAPTURE_OR_SKIP(c, CaptureExchange("jpeg", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    ASSERT_TRUE(vendor.Echo("hello", &reply).ok());
                  }));
  const AuditReport r = Audit(c);
  const auto found = Of(r, ViolationKind::kImageSignature);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].detail.find("JPEG"), std::string::npos);
}

TEST_F(TrafficAuditTest, UnknownMethodPathFails) {
  CAPTURE_OR_SKIP(
      c, CaptureExchange("unknown-method", ProbePlan{}, [](ProbeVendor& vendor) {
        EXPECT_EQ(vendor.CallUnknownMethod("/fedface.audittest.AuditProbe/Missing").error_code(),
                  grpc::StatusCode::UNIMPLEMENTED);
      }));
  const AuditReport r = Audit(c);
  const auto found = Of(r, ViolationKind::kUnknownMethod);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_NE(found[0].detail.find("/fedface.audittest.AuditProbe/Missing"), std::string::npos);
}

TEST_F(TrafficAuditTest, ReplyTypeOutsideTheAllowlistFails) {
  CAPTURE_OR_SKIP(c, CaptureExchange("allowlist", ProbePlan{}, [](ProbeVendor& vendor) {
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(3, &replies).ok());
                  }));
  const AuditReport r = Audit(c, std::set<std::string>{"fedface.audittest.ProbeRequest"});
  EXPECT_EQ(Of(r, ViolationKind::kTypeNotAllowed).size(), 3u);
  EXPECT_EQ(r.violation_count, 3u);
}

TEST_F(TrafficAuditTest, LedgerThatMissesOrReordersAMessageFails) {
  CAPTURE_OR_SKIP(c, CaptureExchange("ledger", ProbePlan{}, [](ProbeVendor& vendor) {
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(4, &replies).ok());
                  }));
  ASSERT_EQ(c.sent_replies.size(), 4u);
  EXPECT_TRUE(Audit(c, {}, LedgerOf(c.sent_replies)).passed());

  std::vector<std::string> missing = c.sent_replies;
  missing.erase(missing.begin() + 1);
  const AuditReport r1 = Audit(c, {}, LedgerOf(missing));
  const auto v1 = Of(r1, ViolationKind::kLedgerMismatch);
  ASSERT_EQ(v1.size(), 1u);
  EXPECT_NE(v1[0].detail.find("has no ledger entry"), std::string::npos);
  EXPECT_NE(v1[0].detail.find(Sha256Hex(c.sent_replies[1])), std::string::npos);

  std::vector<std::string> swapped = c.sent_replies;
  std::swap(swapped[0], swapped[3]);
  const AuditReport r2 = Audit(c, {}, LedgerOf(swapped));
  const auto v2 = Of(r2, ViolationKind::kLedgerMismatch);
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_NE(v2[0].detail.find("another order"), std::string::npos);
}

TEST_F(TrafficAuditTest, PartnersEgressLedgerFileIsMatchedAndItsChainChecked) {
  CAPTURE_OR_SKIP(c, CaptureExchange("egress-ledger", ProbePlan{}, [](ProbeVendor& vendor) {
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(3, &replies).ok());
                  }));
  const std::string path = c.dir + "/egress_ledger.db";
  {
    auto ledger =
        partner::EgressLedger::Open(path, partner::EgressLedger::OpenMode::kCreateIfMissing);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (const std::string& reply : c.sent_replies) {
      ASSERT_TRUE((*ledger)->Append("vendor-a", "round 1", kReplyType, reply).ok());
    }
  }
  auto loaded = partner::audit::LoadLedger(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->format, "egress-ledger");
  EXPECT_TRUE(Audit(c, {}, *loaded).passed());

  // An edited entry: the chain breaks, and the record no longer matches the capture.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE ledger_entries SET size_bytes = size_bytes + 1 WHERE seq = 2",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto tampered = partner::audit::LoadLedger(path);
  ASSERT_TRUE(tampered.ok()) << tampered.status();
  const AuditReport r = Audit(c, {}, *tampered);
  EXPECT_EQ(Of(r, ViolationKind::kLedgerChain).size(), 1u);
  EXPECT_EQ(Of(r, ViolationKind::kLedgerMismatch).size(), 2u);  // a message and an entry unpaired
}

TEST_F(TrafficAuditTest, EmbeddingsReadFromTheGalleryStoreAreCaught) {
  const std::string dir = testing::MakeTempDir("gallery-embeddings");
  const std::string db = dir + "/gallery.db";
  {
    auto store = partner::OpenGalleryStore(partner::SqliteGallerySpec(db));
    ASSERT_TRUE(store.ok()) << store.status();
    partner::ImageOutcome outcome;
    outcome.subject = "subject-one";
    outcome.content_sha256 = std::string(64, 'a');
    outcome.relative_path = "subject-one/1.jpg";
    outcome.model_version = "1.0.0";
    for (int f = 0; f < 2; ++f) {
      Embedding e{};
      std::memcpy(e.data(), embeddings_[f].data(), sizeof(float) * e.size());
      outcome.faces.push_back(e);
    }
    ASSERT_TRUE((*store)->CommitBatch({outcome}).ok());
  }
  auto reopened = partner::OpenGalleryStore(partner::SqliteGallerySpec(db, /*must_exist=*/true));
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  auto stored = partner::audit::LoadStoredEmbeddings(**reopened);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].bytes, embeddings_[0]);
  EXPECT_EQ((*stored)[1].bytes, embeddings_[1]);
  EXPECT_EQ((*stored)[0].label.rfind("embedding ", 0), 0u);

  ProbePlan plan;
  const std::string leaked = (*stored)[1].bytes.substr(200, 24);
  plan.fill = [&](const ProbeRequest&, int, ProbeReply* reply) { reply->set_payload(leaked); };
  CAPTURE_OR_SKIP(c, CaptureExchange("gallery", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    ASSERT_TRUE(vendor.Echo("hello", &reply).ok());
                  }));
  LeakPatterns patterns;
  for (const auto& s : *stored) ASSERT_TRUE(patterns.AddStoredBytes(s.bytes, s.label).ok());
  patterns.Seal();
  AuditOptions options;
  options.partner_port = static_cast<uint16_t>(c.port);
  options.patterns = &patterns;
  options.catalog = catalog_.get();
  auto r = AuditCaptures({c.pcap}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Of(*r, ViolationKind::kStoredBytes).size(), 1u) << FormatAuditText(*r);
}

// The user tool: `partner_node audit` over the same kind of capture, text and JSON, exit codes.
TEST_F(TrafficAuditTest, CommandLineToolPassesCleanCaptureAndFailsLeakyOne) {
  const std::string binary = testing::Env("FEDFACE_PARTNER_NODE");
  if (binary.empty() || access(binary.c_str(), X_OK) != 0) {
    FEDFACE_SKIP_OR_FAIL("partner_node binary not built (" << binary << ")");
  }
  const std::string canary = canaries_[0];
  ProbePlan plan;
  plan.fill = [&](const ProbeRequest& request, int index, ProbeReply* reply) {
    reply->set_payload(Letters(index, 100));
    if (request.note() == "leak") reply->set_label(canary);
  };
  CAPTURE_OR_SKIP(c, CaptureExchange("cli", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    ASSERT_TRUE(vendor.Echo("clean", &reply).ok());
                  }));
  CAPTURE_OR_SKIP(leaky, CaptureExchange("cli-leaky", plan, [](ProbeVendor& vendor) {
                    ProbeReply reply;
                    ASSERT_TRUE(vendor.Echo("leak", &reply).ok());
                  }));
  const std::string canaries = c.dir + "/canaries.txt";
  std::ofstream(canaries) << absl::StrJoin(canaries_, "\n") << "\n";
  const std::string allow = c.dir + "/allow.txt";
  std::ofstream(allow) << kReplyType << "\n";
  const std::string ledger = c.dir + "/ledger.json";
  nlohmann::json entries = nlohmann::json::array();
  for (const std::string& r : c.sent_replies) {
    entries.push_back({{"type", kReplyType}, {"size", r.size()}, {"sha256", Sha256Hex(r)}});
  }
  std::ofstream(ledger) << entries.dump();

  auto run = [&](const Capture& capture, std::string* out) {
    const std::string cmd = absl::StrCat(
        binary, " audit --pcap ", capture.pcap, " --port ", capture.port, " --canaries ", canaries,
        " --allow-types ", allow, " --ledger ", ledger, " --descriptor-set ",
        AUDIT_PROBE_DESCRIPTOR_SET, " --packages fedface.audittest --json");
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
    const int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string clean_out, leaky_out;
  EXPECT_EQ(run(c, &clean_out), 0) << clean_out;
  const auto clean = nlohmann::json::parse(clean_out);
  EXPECT_EQ(clean["verdict"], "pass");
  EXPECT_EQ(clean["checked"]["ledger_matched"], 1);

  EXPECT_EQ(run(leaky, &leaky_out), 1) << leaky_out;
  const auto failed = nlohmann::json::parse(leaky_out);
  EXPECT_EQ(failed["verdict"], "fail");
  ASSERT_FALSE(failed["violations"].empty());
  std::set<std::string> kinds;
  for (const auto& v : failed["violations"]) kinds.insert(v["kind"].get<std::string>());
  EXPECT_TRUE(kinds.count("canary")) << leaky_out;
  EXPECT_TRUE(kinds.count("ledger-mismatch")) << leaky_out;  // the ledger is the clean run's
}

// Not a speed assertion: prints the audit's throughput on a capture of ~25 MB, and checks that
// a large capture decodes completely when tcpdump dropped nothing.
TEST_F(TrafficAuditTest, AuditsALargeCaptureAndPrintsThroughput) {
  ProbePlan plan;
  const std::string payload = Letters(99, 1 << 20);
  plan.fill = [&](const ProbeRequest&, int index, ProbeReply* reply) {
    reply->set_sequence(static_cast<uint64_t>(index));
    reply->set_payload(payload);
  };
  CAPTURE_OR_SKIP(c, CaptureExchange("large", plan, [](ProbeVendor& vendor) {
                    std::vector<ProbeReply> replies;
                    ASSERT_TRUE(vendor.Stream(24, &replies).ok());
                  }));
  // A realistic pattern load: 2000 stored embeddings and 1000 canaries.
  std::mt19937_64 rng(5);
  LeakPatterns patterns;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(
        patterns.AddCanary(absl::StrCat("FFCANARY-", absl::Hex(rng(), absl::kZeroPad16))).ok());
  }
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(512, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() & 0xFF);
    ASSERT_TRUE(patterns.AddStoredBytes(bytes, absl::StrCat("embedding ", i)).ok());
  }
  patterns.Seal();
  AuditOptions options;
  options.partner_port = static_cast<uint16_t>(c.port);
  options.patterns = &patterns;
  options.catalog = catalog_.get();
  auto r = AuditCaptures({c.pcap}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  std::cout << "audit throughput: " << r->captured_bytes << " bytes captured in " << r->seconds
            << " s = " << r->captured_bytes / r->seconds / 1e6 << " MB/s ("
            << patterns.anchor_count() << " anchors)\n";
  if (c.dropped == 0) {
    EXPECT_TRUE(r->passed()) << FormatAuditText(*r);
    EXPECT_EQ(r->sent.size(), 24u);
    EXPECT_GT(r->bytes_left_partner, 24u << 20);
  } else {
    // The kernel dropped packets (a busy machine): the audit must see the holes, and nothing else.
    std::cout << "tcpdump dropped " << c.dropped << " packets: gaps expected\n";
    for (const auto& [kind, n] : r->violations_by_kind) EXPECT_EQ(kind, "incomplete");
  }
}

}  // namespace
}  // namespace fedface::audit_test
