#include "tests/audit/federation/audit_world.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/common/status_macros.h"
#include "core/config/config_file.h"
#include "fedface/v1/evaluation.pb.h"
#include "fedface/v1/model_registry.pb.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/serve/serve_config.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {
namespace fs = std::filesystem;

using partner::audit::AuditOptions;
using partner::audit::AuditReport;
using partner::audit::GrpcMethodCatalog;
using partner::audit::IpAddress;
using partner::audit::LeakPatterns;
using testing::ChildProcess;
using testing::ProcessResult;
using testing::ReadText;
using testing::RunProcess;
using testing::WriteText;

namespace {

// In the namespaces mode every partner has its own address, so all listen on the product's
// default vendor-facing port.
constexpr int kNamespaceVendorPort = 7543;
constexpr char kModelVersion[] = "1.0.0";

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

double SecondsSince(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

// Waits until `path` (a child's stdout) matches `pattern`; returns group 1, or "" when the
// process exited or the time ran out.
std::string WaitForLine(ChildProcess& process, const std::string& path, const std::regex& pattern,
                        absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    std::smatch m;
    const std::string text = ReadText(path);
    if (std::regex_search(text, m, pattern)) return m[1];
    if (!process.Running()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "";
}

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

std::string LeakyPartnerNodeBinary() {
  const std::string env = testing::Env("FEDFACE_PARTNER_NODE_LEAKY");
  return env.empty() ? FEDFACE_PARTNER_NODE_LEAKY_PATH : env;
}

std::string MakeDemoGalleriesBinary() {
  const std::string env = testing::Env("FEDFACE_MAKE_DEMO_GALLERIES");
  return env.empty() ? FEDFACE_MAKE_DEMO_GALLERIES_PATH : env;
}

AuditWorld::~AuditWorld() {
  for (auto& [n, p] : partners_) {
    if (p.serve && p.serve->Running()) {
      p.serve->Signal(SIGTERM);
      p.serve->Wait(absl::Seconds(20));
    }
    p.capture.reset();
    p.relay.reset();
  }
  partners_.clear();
  if (registry_ && registry_->Running()) {
    registry_->Signal(SIGTERM);
    registry_->Wait(absl::Seconds(20));
  }
  registry_.reset();
  network_.reset();  // last: nothing runs in the namespaces any more
}

std::string AuditWorld::PcapPath(int n) const {
  return absl::StrCat(dir_, "/pcaps/", phase_.name, "-", PartnerName(n), ".pcap");
}

std::string AuditWorld::KeyLogPath(int n) const {
  if (!phase_.tls || !phase_.key_log) return "";
  return absl::StrCat(PartnerDir(n), "/tls-keys-", phase_.name, ".log");
}

std::string AuditWorld::RegistryAddress(int n) const {
  return absl::StrCat(network_->VendorIpFacing(n), ":", registry_port_);
}

int AuditWorld::VendorPort(int n) const {
  const auto it = partners_.find(n);
  return it == partners_.end() ? 0 : it->second.vendor_port;
}

std::string AuditWorld::Prepare(const WorldOptions& options) {
  options_ = options;
  fs::create_directories(dir_ + "/pcaps");
  const absl::Time start = absl::Now();
  if (testing::TestPackageDir().empty() || testing::TestVendorKey().empty()) {
    return "the fixture's signed package is absent";
  }
  // FEDFACE_AUDIT_LOOPBACK=1 runs the loopback mode even where namespaces could be made.
  absl::StatusOr<std::unique_ptr<AuditNetwork>> made =
      testing::Env("FEDFACE_AUDIT_LOOPBACK").empty()
          ? AuditNetwork::CreateNamespaces(options.partners, dir_)
          : absl::UnavailableError("FEDFACE_AUDIT_LOOPBACK is set");
  std::string mode_note;
  if (!made.ok() && testing::CiRequiresEveryCheck() &&
      testing::Env("FEDFACE_AUDIT_LOOPBACK").empty()) {
    // Under CI the audit must see everything that leaves a partner, not only its vendor port.
    return absl::StrCat("network namespaces are unavailable under CI=true (",
                        made.status().message(), "); the audit would only see the vendor port");
  }
  if (made.ok()) {
    network_ = *std::move(made);
  } else {
    network_ = AuditNetwork::Loopback();
    mode_note = absl::StrCat(" (namespaces unavailable: ", made.status().message(), ")");
  }
  preparation_summary_ = absl::StrCat("mode: ", network_->Describe(), mode_note, "\n");

  // Galleries: every face of the sample photos is a subject, dealt round-robin to partners.
  std::vector<std::string> names;
  for (int n = 1; n <= options.partners; ++n) names.push_back(PartnerName(n));
  const std::string photos = testing::FaceApiDir() + "/demo";
  std::vector<std::string> argv = {MakeDemoGalleriesBinary(),
                                   "--out",
                                   dir_ + "/galleries",
                                   "--partners",
                                   absl::StrJoin(names, ","),
                                   "--captures",
                                   std::to_string(options.captures_per_subject),
                                   "--canaries",
                                   dir_ + "/canaries.txt"};
  for (int i = 1; i <= 6; ++i) argv.push_back(absl::StrCat(photos, "/sample", i, ".jpg"));
  const absl::Time galleries_start = absl::Now();
  const ProcessResult galleries = RunProcess(argv, dir_);
  if (galleries.exit_code != 0) return "make_demo_galleries failed: " + Tail(galleries.err);
  canaries_path_ = dir_ + "/canaries.txt";
  for (int n = 1; n <= options.partners; ++n) {
    int subjects = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ + "/galleries/" + PartnerName(n), ec)) {
      subjects += e.is_directory() ? 1 : 0;
    }
    if (subjects < options.k_minimum) {
      return absl::StrCat(PartnerName(n), " has ", subjects,
                          " subjects, fewer than k=", options.k_minimum);
    }
    absl::StrAppend(&preparation_summary_, PartnerName(n), ": ", subjects, " subjects x ",
                    options.captures_per_subject, " captures; ");
  }
  absl::StrAppendFormat(&preparation_summary_, "galleries %.1f s\n", SecondsSince(galleries_start));

  if (std::string e = MakePki(); !e.empty()) return e;
  if (std::string e = StartRegistry(); !e.empty()) return e;
  for (int n = 1; n <= options.partners; ++n) {
    if (std::string e = PreparePartner(n); !e.empty()) return PartnerName(n) + ": " + e;
  }
  // Enrolment of all partners at once (each its own process, as on separate machines).
  const absl::Time enrol_start = absl::Now();
  std::vector<std::unique_ptr<ChildProcess>> enrolments;
  // A PostgreSQL partner's gallery is enrolled by two hosts sharing the work through its store.
  std::vector<std::pair<int, std::string>> hosts;  // partner, output name
  for (int n = 1; n <= options.partners; ++n) {
    hosts.emplace_back(n, "enroll");
    if (PostgresqlGallery(n)) hosts.emplace_back(n, "enroll-host2");
  }
  for (const auto& [n, name] : hosts) {
    enrolments.push_back(std::make_unique<ChildProcess>(
        Concat(network_->InPartner(n), {testing::PartnerNodeBinary(), "enroll", "--config",
                                        PartnerDir(n) + "/partner-enroll.yaml", "--gallery",
                                        dir_ + "/galleries/" + PartnerName(n)}),
        PartnerDir(n) + "/" + name + ".out", PartnerDir(n) + "/" + name + ".err"));
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    const auto& [n, name] = hosts[i];
    const std::string out = PartnerDir(n) + "/" + name;
    if (enrolments[i]->Wait(absl::Minutes(10)) != 0) {
      return absl::StrCat(PartnerName(n), ": ", name,
                          " failed: ", Tail(ReadText(out + ".out") + ReadText(out + ".err")));
    }
    absl::StrAppend(&preparation_summary_, PartnerName(n), " ", name, ": ",
                    Tail(ReadText(out + ".out"), 300));
  }
  absl::StrAppendFormat(&preparation_summary_, "enrolment %.1f s; preparation %.1f s\n",
                        SecondsSince(enrol_start), SecondsSince(start));
  return "";
}

std::string AuditWorld::MakePki() {
  pki_ = dir_ + "/pki";
  std::vector<std::string> names;
  for (int n = 1; n <= options_.partners; ++n) names.push_back(PartnerName(n));
  // A development set (the coordinator reaches partners through relays on its loopback; the
  // partners reach the registry as "localhost"), plus each partner's namespace address.
  std::vector<std::string> addresses;
  for (int n = 1; n <= options_.partners; ++n) {
    addresses.push_back("--partner-address");
    addresses.push_back(absl::StrCat(PartnerName(n), "=10.231.", n, ".2"));
  }
  if (!testing::MakeCertificates(pki_, names, addresses)) return "scripts/make_certs.sh failed";
  return "";
}

std::string AuditWorld::StartRegistry() {
  const std::string registry = dir_ + "/registry";
  fs::create_directories(registry);
  if (!testing::PublishCopy(testing::TestPackageDir(), registry + "/" + kModelVersion, "",
                            nullptr)) {
    return "cannot publish the test package";
  }
  std::vector<std::string> names;
  for (int n = 1; n <= options_.partners; ++n) names.push_back(PartnerName(n));
  // Namespaces mode: the vendor's namespace holds only its loopback and its ends of the partner
  // links, so listening on all of its addresses reaches every partner and nothing else.
  WriteText(
      dir_ + "/vendor.yaml",
      absl::StrCat("server:\n  listen: \"", network_->namespaces() ? "0.0.0.0:0" : "127.0.0.1:0",
                   "\"\n  ca_cert: ", pki_, "/ca.crt\n  cert: ", pki_,
                   "/registry.crt\n  key: ", pki_, "/registry.key\n  partners: [",
                   absl::StrJoin(names, ", "), "]\nregistry:\n  dir: ", registry,
                   "\naudit:\n  tls_key_log: ", VendorKeyLogPath(), "\n"));
  const std::string out = dir_ + "/vendor-registry.out";
  registry_ = std::make_unique<ChildProcess>(
      Concat(network_->InVendor(),
             {testing::ModelVendorBinary(), "serve", "--config", dir_ + "/vendor.yaml"}),
      out, dir_ + "/vendor-registry.err");
  static const std::regex kListening("listening on [^ ]*:([0-9]+)");
  const std::string port = WaitForLine(*registry_, out, kListening, absl::Seconds(60));
  if (port.empty()) {
    return "model_vendor serve did not start: " + Tail(ReadText(dir_ + "/vendor-registry.err"));
  }
  registry_port_ = std::stoi(port);
  return "";
}

std::string AuditWorld::WritePartnerConfig(int n, bool tls, int port,
                                           const std::string& key_log) const {
  const std::string d = PartnerDir(n);
  const std::string name = PartnerName(n);
  std::string yaml = absl::StrCat(
      "vendor:\n  address: \"", RegistryAddress(n), "\"\n",
      network_->namespaces() ? "  server_name: \"localhost\"\n" : "", "  ca_cert: ", pki_,
      "/ca.crt\n  client_cert: ", pki_, "/partners/", name, "/client.crt\n  client_key: ", pki_,
      "/partners/", name, "/client.key\n  signing_key: ", testing::TestVendorKey(),
      ".pub\nmodel_cache:\n  dir: ", d, "/models\ngallery:\n  db: ", d, "/gallery.db\n",
      PostgresqlGallery(n) ? absl::StrCat("  store: postgresql\n  postgresql:\n    conninfo: \"",
                                          options_.postgresql_conninfo, "\"\n")
                           : "",
      "engine:\n  workers: 1\nvendor_api:\n  listen: \"", network_->PartnerIp(n), ":", port,
      "\"\n  tls: ", tls ? "true" : "false", "\n");
  if (tls) {
    absl::StrAppend(&yaml, "  ca_cert: ", pki_, "/ca.crt\n  cert: ", pki_, "/partners/", name,
                    "/server.crt\n  key: ", pki_, "/partners/", name, "/server.key\n");
  }
  if (options_.rate_limit_replays >= 0) {
    // A day-long window: the test's calls never straddle two windows.
    absl::StrAppend(&yaml, "  rate_limit:\n    window_seconds: 86400\n    replays: ",
                    options_.rate_limit_replays, "\n");
  }
  // A short Unix socket path (sun_path holds 108 bytes; the artefact folder is deep).
  absl::StrAppend(
      &yaml, "  allowed_vendors: [", kVendorIdentity, "]\nlocal_api:\n  listen: \"unix:/tmp/",
      "fedface-audit-", getpid(), "-", name, ".sock\"\negress:\n  k_minimum: ", options_.k_minimum,
      "\n  differential_privacy: true\n  epsilon_per_release: \"", options_.epsilon_per_release,
      "\"\n  epsilon_budget: \"", 100 * options_.epsilon_per_release, "\"", "\n  budget_path: ", d,
      "/privacy_budget.db\n  held_releases_path: ", d, "/held_releases.db\nledger:\n  path: ", d,
      "/egress_ledger.db\n");
  if (!key_log.empty()) absl::StrAppend(&yaml, "audit:\n  tls_key_log: ", key_log, "\n");
  return yaml;
}

std::string AuditWorld::PreparePartner(int n) {
  const std::string d = PartnerDir(n);
  fs::create_directories(d);
  const std::string config = d + "/partner-enroll.yaml";
  WriteText(config, WritePartnerConfig(n, /*tls=*/true, 0, PullKeyLogPath(n)));
  // Namespaces: the pull is captured too, every packet on the partner's only link, from before
  // the partner exists to after it is gone (the phases' captures start later).
  std::unique_ptr<PacketCapture> capture;
  if (network_->namespaces()) {
    absl::StatusOr<std::unique_ptr<PacketCapture>> started = PacketCapture::Start(
        network_->InPartner(n), network_->PartnerInterface(n), PullPcapPath(n), "");
    if (!started.ok()) return "pull capture: " + std::string(started.status().message());
    capture = *std::move(started);
  }
  const absl::Time start = absl::Now();
  const ProcessResult pull =
      RunProcess(Concat(network_->InPartner(n), {testing::PartnerNodeBinary(), "models", "pull",
                                                 "--config", config, "--version", kModelVersion}),
                 d);
  if (capture) {
    if (absl::StatusOr<CaptureSummary> stopped = capture->Stop(); !stopped.ok()) {
      return "pull capture: " + std::string(stopped.status().message());
    }
  }
  if (pull.exit_code != 0) return "models pull failed: " + Tail(pull.out + pull.err);
  absl::StrAppendFormat(&preparation_summary_, "%s models pull %.1f s; ", PartnerName(n),
                        SecondsSince(start));
  return "";
}

std::string AuditWorld::StartPhase(const PhaseOptions& phase) {
  phase_ = phase;
  summaries_.clear();
  static const std::regex kListening("vendor API on [^ ]*:([0-9]+)");
  for (int n = 1; n <= options_.partners; ++n) {
    Partner& p = partners_[n];
    const std::string d = PartnerDir(n);
    const std::string tag = absl::StrCat("serve-", phase.name);
    const int port = network_->namespaces() ? kNamespaceVendorPort : 0;
    const std::string config = absl::StrCat(d, "/partner-", phase.name, ".yaml");
    WriteText(config, WritePartnerConfig(n, phase.tls, port, KeyLogPath(n)));
    // Namespaces: capture from before the partner starts, every packet on its only link.
    if (network_->namespaces()) {
      absl::StatusOr<std::unique_ptr<PacketCapture>> capture = PacketCapture::Start(
          network_->InPartner(n), network_->PartnerInterface(n), PcapPath(n), "");
      if (!capture.ok()) {
        capture_unavailable_ = std::string(capture.status().message());
        return capture_unavailable_;
      }
      p.capture = *std::move(capture);
    }
    std::vector<std::string> argv = network_->InPartner(n);
    if (phase.leaky_partners.count(n)) {
      argv.push_back("/usr/bin/env");
      argv.push_back("FEDFACE_LEAKY_GALLERY_DB=" + GalleryDb(n));
      argv.push_back(LeakyPartnerNodeBinary());
    } else {
      argv.push_back(testing::PartnerNodeBinary());
    }
    for (const char* a : {"serve", "--config"}) argv.push_back(a);
    argv.push_back(config);
    const std::string out = absl::StrCat(d, "/", tag, ".out");
    p.serve = std::make_unique<ChildProcess>(argv, out, absl::StrCat(d, "/", tag, ".err"));
    const std::string bound = WaitForLine(*p.serve, out, kListening, absl::Seconds(120));
    if (bound.empty()) {
      return absl::StrCat(PartnerName(n), ": serve did not start: ",
                          Tail(ReadText(absl::StrCat(d, "/", tag, ".err"))));
    }
    p.vendor_port = std::stoi(bound);
    // Loopback: the port is known now; capture what is sent from / to it (nothing was before).
    if (!network_->namespaces()) {
      absl::StatusOr<std::unique_ptr<PacketCapture>> capture =
          PacketCapture::Start({}, "lo", PcapPath(n), absl::StrCat("tcp port ", p.vendor_port));
      if (!capture.ok()) {
        capture_unavailable_ = std::string(capture.status().message());
        return capture_unavailable_;
      }
      p.capture = *std::move(capture);
    } else if (!p.relay) {
      absl::StatusOr<std::unique_ptr<TcpRelay>> relay = TcpRelay::Start(
          network_->vendor_namespace(), network_->PartnerIp(n), kNamespaceVendorPort);
      if (!relay.ok()) return std::string(relay.status().message());
      p.relay = *std::move(relay);
    }
  }
  testing::RecordCheckMode(absl::StrCat(
      "phase ", phase.name, ": ", network_->Describe(), ", vendor link ",
      phase.tls ? (phase.key_log ? "mutual TLS, key log on" : "mutual TLS") : "plaintext",
      phase.leaky_partners.empty() ? "" : ", leaky partner"));
  return "";
}

std::string AuditWorld::StopPhase() {
  std::string problems;
  for (auto& [n, p] : partners_) {
    if (p.serve) {
      p.serve->Signal(SIGTERM);
      const int code = p.serve->Wait(absl::Seconds(30));
      if (code != 0) absl::StrAppend(&problems, PartnerName(n), " serve ended with ", code, "; ");
      p.serve.reset();
    }
    if (p.capture) {
      absl::StatusOr<CaptureSummary> summary = p.capture->Stop();
      p.capture.reset();
      if (!summary.ok()) {
        absl::StrAppend(&problems, PartnerName(n), ": ", summary.status().message(), "; ");
        summaries_.push_back({});
      } else {
        summaries_.push_back(*summary);
      }
    }
  }
  return problems;
}

std::string AuditWorld::WriteCoordinatorConfig(const std::string& tag) const {
  std::string yaml = ReadText(dir_ + "/vendor.yaml");
  absl::StrAppend(&yaml, "coordinator:\n  partners:\n");
  for (const auto& [n, p] : partners_) {
    // Namespaces: through the relay on the vendor's loopback (see tcp_relay.h).
    const int port = p.relay ? p.relay->port() : p.vendor_port;
    absl::StrAppend(&yaml, "    - \"", PartnerName(n), " 127.0.0.1:", port, "\"\n");
  }
  absl::StrAppend(&yaml, "  client_cert: ", pki_, "/coordinator.crt\n  client_key: ", pki_,
                  "/coordinator.key\n  quorum: ", partners_.size(),
                  "\n  call_deadline_seconds: 300\n  round_deadline_seconds: 600\n"
                  "  max_attempts: 2\n  initial_backoff_ms: 200\n  max_backoff_ms: 500\n"
                  "  rounds_db: ",
                  dir_, "/rounds.db\n");
  const std::string path = absl::StrCat(dir_, "/round-", tag, "/coordinator.yaml");
  WriteText(path, yaml);
  return path;
}

ProcessResult AuditWorld::RunRound(const std::string& round_id, bool plaintext,
                                   const std::string& tag) {
  const std::string round_dir = absl::StrCat(dir_, "/round-", tag);
  fs::create_directories(round_dir);
  std::vector<std::string> argv =
      Concat(network_->InVendor(),
             {testing::ModelVendorBinary(), "round", "--config", WriteCoordinatorConfig(tag),
              "--model", kModelVersion, "--protocol", "verification", "--out",
              round_dir + "/report", "--round-id", round_id});
  if (plaintext) argv.push_back("--plaintext");
  ProcessResult r = RunProcess(argv, round_dir);
  WriteText(round_dir + "/round.out", r.out);
  WriteText(round_dir + "/round.err", r.err);
  return r;
}

absl::StatusOr<AuditReport> AuditWorld::AuditPartner(int n, int64_t ledger_from_seq,
                                                     const std::string& key_log) {
  const std::string keys = key_log.empty() ? KeyLogPath(n) : key_log == "-" ? "" : key_log;
  return AuditCapture(n, PcapPath(n), keys, ledger_from_seq);
}

absl::StatusOr<AuditReport> AuditWorld::AuditPull(int n) {
  return AuditCapture(n, PullPcapPath(n), PullKeyLogPath(n), std::nullopt);
}

absl::StatusOr<AuditReport> AuditWorld::AuditCapture(int n, const std::string& pcap,
                                                     const std::string& keys,
                                                     std::optional<int64_t> ledger_from_seq) {
  LeakPatterns patterns;
  ASSIGN_OR_RETURN(std::vector<std::string> canaries, partner::audit::LoadCanaries(canaries_path_));
  for (const std::string& token : canaries) {
    RETURN_IF_ERROR(patterns.AddCanary(token));
  }
  // Every form the gallery store keeps of a face: the embeddings (128 float32, searched in every
  // encoding of embedding_encodings.h) and the images' content digests (hex text and raw bytes).
  // Read through the GalleryStore interface, as `partner_node audit` reads it.
  partner::GalleryStoreSpec spec = partner::SqliteGallerySpec(GalleryDb(n), /*must_exist=*/true);
  if (PostgresqlGallery(n)) {
    spec.kind = partner::GalleryStoreKind::kPostgresql;
    spec.postgresql_conninfo = options_.postgresql_conninfo;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<partner::GalleryStore> store, partner::OpenGalleryStore(spec));
  ASSIGN_OR_RETURN(std::vector<partner::audit::StoredBytes> embeddings,
                   partner::audit::LoadStoredEmbeddings(*store));
  for (partner::audit::StoredBytes& e : embeddings) {
    RETURN_IF_ERROR(patterns.AddEmbedding(e.bytes, e.label));
  }
  ASSIGN_OR_RETURN(std::vector<partner::audit::StoredBytes> digests,
                   partner::audit::LoadImageDigests(*store));
  for (partner::audit::StoredBytes& d : digests) {
    RETURN_IF_ERROR(patterns.AddCanary(d.bytes));
    RETURN_IF_ERROR(patterns.AddStoredBytes(Unhex(d.bytes), d.label));
  }
  patterns.set_image_signatures(true);
  patterns.Seal();

  // The catalog is built from the descriptors linked into this binary: touch the vendor link's
  // files so the linker keeps them (nothing else here refers to them).
  (void)fedface::v1::EvaluationRelease::descriptor();
  (void)fedface::v1::ListModelsResponse::descriptor();
  std::unique_ptr<GrpcMethodCatalog> catalog = GrpcMethodCatalog::FromLinkedProtos({"fedface.v1"});
  if (catalog->Find("/fedface.v1.EvaluationService/RunEvaluation") == nullptr) {
    return absl::InternalError("the audit catalog does not know EvaluationService");
  }
  AuditOptions options;
  options.partner_port = static_cast<uint16_t>(VendorPort(n));
  if (network_->namespaces()) {
    ASSIGN_OR_RETURN(IpAddress ip, IpAddress::Parse(network_->PartnerIp(n)));
    options.partner_ips.push_back(ip);
  }
  options.patterns = &patterns;
  options.catalog = catalog.get();
  options.allowed_types = std::set<std::string>{kReleaseType};
  // A pull: only the registry requests may leave (no release, so no ledger to match).
  if (!ledger_from_seq) options.allowed_types = {kPullTypes.begin(), kPullTypes.end()};
  // The peers `partner_node audit --config` takes from the partner's configuration.
  partner::audit::PeerAllowlist peers;
  RETURN_IF_ERROR(partner::audit::AddOutgoingPeer(RegistryAddress(n), "vendor.address", &peers));
  peers.incoming_ports.insert(static_cast<uint16_t>(VendorPort(n)));
  options.peers = std::move(peers);
  // The egress.* privacy settings `partner_node audit --config` reads from the same file: a
  // release over bin layout 2 must state exactly the noise they imply.
  ASSIGN_OR_RETURN(const Config config, Config::Load(PartnerDir(n) + "/partner-enroll.yaml",
                                                     partner::PartnerConfigSchema()));
  ASSIGN_OR_RETURN(const partner::EgressSettings egress, partner::EgressSettingsFrom(config));
  options.release_privacy = egress.guard.dp;
  options.capture_mode = network_->namespaces() ? partner::audit::CaptureMode::kNamespace
                                                : partner::audit::CaptureMode::kLoopback;
  if (ledger_from_seq) {
    ASSIGN_OR_RETURN(partner::audit::LoadedLedger ledger,
                     partner::audit::LoadLedger(LedgerPath(n), *ledger_from_seq));
    options.ledger = std::move(ledger);
  }
  std::optional<partner::audit::TlsKeyLog> tls_keys;
  if (!keys.empty()) {
    ASSIGN_OR_RETURN(partner::audit::TlsKeyLog loaded, partner::audit::TlsKeyLog::Load({keys}));
    tls_keys = std::move(loaded);
    options.tls_keys = &*tls_keys;
  }
  return partner::audit::AuditCaptures({pcap}, options);
}

ProcessResult AuditWorld::AuditPartnerWithTool(int n, int64_t ledger_from_seq) {
  WriteText(dir_ + "/allowed_types.txt", absl::StrCat(kReleaseType, "\n"));
  std::vector<std::string> argv = {"/usr/bin/env",
                                   "FEDFACE_PARTNER_NODE=" + testing::PartnerNodeBinary(),
                                   "/bin/bash",
                                   testing::Env("FEDFACE_SOURCE_DIR") + "/scripts/audit.sh",
                                   "--pcap",
                                   PcapPath(n),
                                   "--port",
                                   std::to_string(VendorPort(n)),
                                   "--canaries",
                                   canaries_path_,
                                   "--ledger",
                                   LedgerPath(n),
                                   "--ledger-from-seq",
                                   std::to_string(ledger_from_seq),
                                   "--allow-types",
                                   dir_ + "/allowed_types.txt",
                                   "--config",
                                   absl::StrCat(PartnerDir(n), "/partner-", phase_.name, ".yaml"),
                                   "--capture-mode",
                                   network_->namespaces() ? "namespace" : "loopback"};
  // The gallery as the partner's configuration names it (SQLite file or PostgreSQL).
  if (PostgresqlGallery(n)) {
    argv.push_back("--config-gallery");
  } else {
    argv.insert(argv.end(), {"--embeddings-db", GalleryDb(n)});
  }
  if (network_->namespaces()) {
    argv.push_back("--partner-ip");
    argv.push_back(network_->PartnerIp(n));
  }
  if (!KeyLogPath(n).empty()) {
    argv.push_back("--tls-keylog");
    argv.push_back(KeyLogPath(n));
  }
  return RunProcess(argv, dir_);
}

}  // namespace fedface::audit_test
