// The audited federation: a vendor (model registry + coordinator) and partners as real
// processes, every partner's traffic captured and audited. Steps:
//   Prepare()        the network (namespaces or loopback, audit_network.h), partner galleries
//                    from the npm sample photos with canaries (make_demo_galleries --canaries),
//                    the PKI, the registry with the fixture's signed package as 1.0.0, and per
//                    partner `models pull` (namespaces: captured on the partner's whole
//                    interface, AuditPull()) + `enroll`;
//   StartPhase()     per partner: tcpdump on what leaves it, then `partner_node serve` (or the
//                    test-only `partner_node_leaky`) with the vendor link in mutual TLS (as in
//                    production) writing its TLS key log (audit.tls_key_log), or in plaintext
//                    (loopback mode only: a plaintext listener elsewhere is refused at start);
//   RunRound()       `model_vendor round` from the vendor's side;
//   StopPhase()      stops the partners (SIGTERM) and the captures;
//   AuditPartner()   the traffic audit (partner_node/audit/traffic_audit.h) of one partner's
//                    capture, decrypted with its key log, against the canaries, the exact bytes
//                    its gallery store keeps (embeddings; image digests), the allowlist, its
//                    egress ledger and its peers (outgoing only to its registry address,
//                    incoming only on its vendor-facing port).
// Everything stays under the world's folder (pcaps, logs, configs, reports) as test artefacts.
//
// Thread safety: one thread.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/audit/audit_inputs.h"
#include "partner_node/audit/traffic_audit.h"
#include "tests/audit/federation/audit_network.h"
#include "tests/audit/federation/tcp_relay.h"
#include "tests/integration/distribution/distribution_harness.h"
#include "tests/support/packet_capture.h"

namespace fedface::audit_test {

using testing::CaptureSummary;
using testing::PacketCapture;

// The only message type a partner may send the vendor.
inline constexpr char kReleaseType[] = "fedface.v1.EvaluationRelease";
// What a model pull sends the registry.
inline constexpr std::array<const char*, 3> kPullTypes = {"fedface.v1.ListModelsRequest",
                                                          "fedface.v1.GetManifestRequest",
                                                          "fedface.v1.DownloadWeightsRequest"};
// The vendor identity partners allow (CN of the coordinator's client certificate).
inline constexpr char kVendorIdentity[] = "fedface-vendor";

struct WorldOptions {
  int partners = 3;
  // k-minimum of every partner. The sample-photo galleries are small (a handful of subjects per
  // partner), so k is set low enough for them to release: 5 here, 10 is the product default.
  int k_minimum = 5;
  // egress.epsilon_per_release (differential privacy is always on toward a vendor); the budget
  // is 100 releases. Large where a test needs the small galleries' histograms not to be emptied
  // by the noise.
  double epsilon_per_release = 1.0;
  int captures_per_subject = 4;
  int rate_limit_replays = -1;  // vendor_api.rate_limit.replays of every partner; -1: default
  // Partner (1-based) whose gallery is in PostgreSQL (gallery.store: postgresql, this libpq
  // connection string), enrolled by two `enroll` processes at once in its namespace; 0: none.
  int postgresql_partner = 0;
  std::string postgresql_conninfo;
};

struct PhaseOptions {
  std::string name;              // names the pcaps and logs: "plaintext", "tls", ...
  bool tls = true;               // vendor_api.tls of every partner
  bool key_log = true;           // audit.tls_key_log of every partner (with tls)
  std::set<int> leaky_partners;  // 1-based: run as partner_node_leaky
};

class AuditWorld {
 public:
  explicit AuditWorld(std::string dir) : dir_(std::move(dir)) {}
  ~AuditWorld();  // stops every process, then deletes the namespaces
  AuditWorld(const AuditWorld&) = delete;
  AuditWorld& operator=(const AuditWorld&) = delete;

  // "" on success, else what failed (with a log's tail). Skip-worthy problems (no tcpdump) are
  // reported by CaptureUnavailable() after StartPhase.
  std::string Prepare(const WorldOptions& options);
  std::string StartPhase(const PhaseOptions& phase);
  // Stops partners and captures; "" on success. Each partner's capture summary is kept.
  std::string StopPhase();

  // `model_vendor round` over every partner: verification, model 1.0.0, the given round id;
  // --plaintext when `plaintext`. Report and logs under dir/round-TAG/.
  testing::ProcessResult RunRound(const std::string& round_id, bool plaintext,
                                  const std::string& tag);

  // The audit of partner n's capture of the last phase, against ledger entries from
  // `ledger_from_seq` on, decrypted with `key_log` (default: the partner's key log of the phase
  // when it wrote one; "-": none).
  absl::StatusOr<partner::audit::AuditReport> AuditPartner(int n, int64_t ledger_from_seq,
                                                           const std::string& key_log = "");
  // Namespaces: the audit of partner n's capture of its model pull in Prepare (its whole
  // interface, no filter), decrypted with its pull key log; only kPullTypes may leave.
  absl::StatusOr<partner::audit::AuditReport> AuditPull(int n);
  // That capture ("" on loopback: there the pull is not captured).
  std::string PullPcapPath(int n) const {
    return network_->namespaces() ? PartnerDir(n) + "/pull.pcap" : "";
  }
  // The same audit through the user tool (scripts/audit.sh -> partner_node audit).
  testing::ProcessResult AuditPartnerWithTool(int n, int64_t ledger_from_seq);

  const AuditNetwork& network() const { return *network_; }
  int partners() const { return options_.partners; }
  std::string PartnerName(int n) const { return "p" + std::to_string(n); }
  std::string PartnerDir(int n) const { return dir_ + "/" + PartnerName(n); }
  std::string GalleryDb(int n) const { return PartnerDir(n) + "/gallery.db"; }
  bool PostgresqlGallery(int n) const { return n == options_.postgresql_partner; }
  std::string LedgerPath(int n) const { return PartnerDir(n) + "/egress_ledger.db"; }
  std::string PcapPath(int n) const;  // of the current / last phase
  // Partner n's TLS key log of the current / last phase; "" when it writes none.
  std::string KeyLogPath(int n) const;
  // Partner n's key log of its model pull in Prepare (the registry channel's client end).
  std::string PullKeyLogPath(int n) const { return PartnerDir(n) + "/tls-keys-pull.log"; }
  // The vendor's key log: the registry server and every round's coordinator append to it.
  std::string VendorKeyLogPath() const { return dir_ + "/vendor-keys.log"; }
  int VendorPort(int n) const;  // partner n's vendor-facing port
  const std::string& canaries_path() const { return canaries_path_; }
  const std::string& dir() const { return dir_; }
  // The registry as partner n's vendor.address names it ("10.231.N.1:PORT" / "127.0.0.1:PORT").
  std::string RegistryAddress(int n) const;
  const std::vector<CaptureSummary>& capture_summaries() const { return summaries_; }
  // Set when tcpdump could not capture here (the caller skips).
  const std::string& capture_unavailable() const { return capture_unavailable_; }
  // What Prepare measured, for the test's printout.
  const std::string& preparation_summary() const { return preparation_summary_; }

 private:
  struct Partner {
    std::unique_ptr<testing::ChildProcess> serve;
    std::unique_ptr<PacketCapture> capture;
    std::unique_ptr<TcpRelay> relay;  // namespaces mode: vendor-side loopback -> partner
    int vendor_port = 0;
  };
  std::string WritePartnerConfig(int n, bool tls, int port, const std::string& key_log) const;
  std::string WriteCoordinatorConfig(const std::string& tag) const;
  std::string MakePki();
  std::string StartRegistry();
  std::string PreparePartner(int n);
  absl::StatusOr<partner::audit::AuditReport> AuditCapture(int n, const std::string& pcap,
                                                           const std::string& keys,
                                                           std::optional<int64_t> ledger_from_seq);

  std::string dir_;
  WorldOptions options_;
  std::unique_ptr<AuditNetwork> network_;
  std::string pki_;
  std::string canaries_path_;
  std::unique_ptr<testing::ChildProcess> registry_;
  int registry_port_ = 0;
  std::map<int, Partner> partners_;
  PhaseOptions phase_;
  std::vector<CaptureSummary> summaries_;
  std::string capture_unavailable_;
  std::string preparation_summary_;
};

// Binaries the world runs (compiled in by tests/audit/federation/CMakeLists.txt; the
// environment variables FEDFACE_PARTNER_NODE_LEAKY / FEDFACE_MAKE_DEMO_GALLERIES override).
std::string LeakyPartnerNodeBinary();
std::string MakeDemoGalleriesBinary();

}  // namespace fedface::audit_test
