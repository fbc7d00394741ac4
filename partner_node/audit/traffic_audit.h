// The traffic audit: proves from packet captures what crossed a partner's boundary.
//
// Input: pcap files (one continuous capture, or several; connections are followed across files),
// the partner's vendor-facing port and/or addresses, the patterns that must never leave (canaries,
// stored embedding bytes, image signatures), the gRPC method catalog, optionally an allowlist of
// message types and the partner's egress ledger.
//
// What is checked, on every TCP connection that involves the partner:
//  1. every byte the partner sent (reassembled TCP payload, plus any retransmitted copy that
//     differs, plus the HPACK-decoded headers and the decoded gRPC messages) holds no canary, no
//     16-byte run of any stored bytes and no image signature;
//  2. both directions decode as plaintext HTTP/2 carrying gRPC: known method paths, messages
//     that parse as the method's declared type with no unknown fields, no compressed messages;
//  3. every message the partner sent is of an allowlisted type (when an allowlist is given);
//  4. the messages the partner sent as the server on its vendor-facing port match the ledger
//     one-to-one and in order: same type, size and sha256 (when a ledger is given); the one
//     exception, rate-limit refusals, are matched per window row (MatchRateLimitWindows).
// TLS connections (production: mutual TLS) are decrypted with the session secrets of the
// partner's key log (AuditOptions::tls_keys; TLS 1.3 only, tls13_stream_decryptor.h) and their
// plaintext goes through every check above; stream offsets of such a connection are offsets in
// the decrypted application data. Anything the audit cannot see (gaps in the capture, a TLS
// connection it cannot decrypt to its end, truncated frames, non-TCP traffic from the partner)
// is a violation too: an audit that cannot look must not pass.
// With a peer allowlist (AuditOptions::peers, peer_allowlist.h) every other TCP connection of the
// partner, either direction, and every non-TCP packet from its addresses (ICMPv6 neighbour
// discovery excepted) is an unexpected-peer violation.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/audit/audit_inputs.h"
#include "partner_node/audit/captured_packet.h"
#include "partner_node/audit/grpc_method_catalog.h"
#include "partner_node/audit/leak_scanner.h"
#include "partner_node/audit/peer_allowlist.h"
#include "partner_node/audit/tcp_reassembler.h"
#include "partner_node/audit/tls_key_log.h"
#include "partner_node/egress/egress_config.h"

namespace fedface::partner::audit {

// How the capture was made, for the verdict line: the partner's own network namespace (its
// whole interface: every byte that left it), or loopback (shared with every process of the host).
enum class CaptureMode { kUnknown, kNamespace, kLoopback };

struct AuditOptions {
  // The partner's vendor-facing listener: every connection to this port has the partner as its
  // server, and what it sends there left the partner. 0: none.
  uint16_t partner_port = 0;
  // Every byte sent from these addresses left the partner (connections it opens, e.g. model
  // pulls, included). Use where the capture sees the partner's own address (its veth); not on
  // loopback, where the vendor shares 127.0.0.1. With addresses given, partner_port only says
  // which of the partner's connections the ledger covers.
  std::vector<IpAddress> partner_ips;
  // Ports of the vendor's servers the partner connects to (the model registry): every connection
  // to one of them has the partner as its client, and what the partner sends there left it. For
  // loopback captures, where the address does not tell the partner from the vendor: the capture
  // must then hold only this partner's connections to those ports (see scripts/demo.sh).
  std::vector<uint16_t> registry_ports;
  // Sealed patterns; required.
  const LeakPatterns* patterns = nullptr;
  // Required. Not owned; used from the calling thread only.
  GrpcMethodCatalog* catalog = nullptr;
  // Full protobuf names that may leave the partner. nullopt: only the declared-type check runs
  // (the report says so).
  std::optional<std::set<std::string>> allowed_types;
  // The partner's differential privacy configuration (egress.*): a release over bin layout 2
  // must state exactly the bounds, epsilon and noise scales it implies (release_shape.h).
  // nullopt: every layout-2 release is a release-shape violation (it cannot be checked).
  std::optional<partner::DifferentialPrivacyConfig> release_privacy;
  // The ledger to match (see LoadLedger); nullopt: no ledger check.
  std::optional<LoadedLedger> ledger;
  // TLS session secrets to decrypt TLS connections with; null: a TLS connection that sends
  // protected records is a violation (it cannot be audited). Not owned.
  const TlsKeyLog* tls_keys = nullptr;
  // Who the partner may talk to; nullopt: peers are not checked (the report says so).
  std::optional<PeerAllowlist> peers;
  CaptureMode capture_mode = CaptureMode::kUnknown;
  // Violations listed in full; beyond this they are only counted per kind.
  size_t max_listed_violations = 500;
};

enum class ViolationKind {
  kCanary,                  // a canary token left the partner
  kStoredBytes,             // a run of stored (embedding) bytes left the partner
  kImageSignature,          // an image file header left the partner
  kUnknownMethod,           // a gRPC path the catalog does not know
  kUndecodableMessage,      // does not parse as its declared type, or has unknown fields
  kTypeNotAllowed,          // left the partner but is not on the allowlist
  kReleaseShape,            // a release off the egress guard's shape or a value off its grid
  kCompressedMessage,       // compressed gRPC message: content cannot be inspected
  kNotGrpc,                 // an HTTP/2 request whose content-type is not application/grpc
  kHttp2,                   // not HTTP/2, TLS, or broken HTTP/2 framing / headers
  kGrpcFraming,             // broken gRPC length-prefix framing
  kIncomplete,              // gaps in the capture; frames/messages cut off
  kUnaudited,               // content the audit cannot inspect (non-TCP from partner, ...)
  kRetransmissionMismatch,  // a retransmitted TCP segment differs from the first copy
  kLedgerMismatch,          // sent messages and ledger entries do not match one-to-one
  kLedgerChain,             // the ledger's own hash chain is broken
  kCaptureDamaged,          // a capture file is truncated or corrupt
  kNoPartnerTraffic,        // no TCP connection of the partner in the captures: nothing proven
  kTlsUndecrypted,          // a TLS connection (or side) that could not be decrypted to its end
  kUnexpectedPeer,          // a connection / packet of the partner to or from a peer not allowed
};

// "canary", "stored-bytes", ... (stable: used in --json output).
const char* ViolationKindName(ViolationKind kind);
// "namespace", "loopback", "unknown" (stable: --capture-mode and --json output).
const char* CaptureModeName(CaptureMode mode);

// Where something was seen. Fields that do not apply are left at their defaults.
struct AuditLocation {
  std::string pcap;    // capture file
  uint64_t frame = 0;  // 1-based frame number in it (0: not tied to a frame)
  int connection = 0;  // 1-based connection id in the report (0: none)
  std::string from;    // endpoint that sent the bytes, e.g. "127.0.0.1:50051"
  std::string to;
  bool from_partner = false;
  uint64_t stream_offset = 0;   // byte offset in that direction's TCP stream
  uint32_t http2_stream = 0;    // 0: not tied to an HTTP/2 stream
  int message_index = -1;       // gRPC message on that stream and side; -1: none
  uint64_t message_offset = 0;  // byte offset inside the message
};

struct Violation {
  ViolationKind kind = ViolationKind::kCanary;
  std::string detail;  // one line
  AuditLocation where;
};

// A gRPC message that left the partner.
struct SentMessage {
  int connection = 0;
  uint32_t http2_stream = 0;
  int index = 0;
  std::string path;
  std::string type;  // full protobuf name; "" when the path is unknown
  uint64_t size = 0;
  std::string sha256;
  std::string pcap;
  uint64_t frame = 0;         // frame that completed it
  bool ledger_scope = false;  // sent as the server on the vendor-facing port
};

struct ConnectionReport {
  int id = 0;
  Endpoint client;  // opened the connection
  Endpoint server;
  bool handshake_seen = false;
  bool partner_is_client = false;
  bool partner_is_server = false;
  ReassemblyStats tcp[2];  // index 0: client -> server, 1: server -> client
  uint64_t messages[2] = {0, 0};
  uint64_t message_bytes[2] = {0, 0};
  std::map<std::string, int> rpcs;   // :path -> streams
  std::map<int, int> grpc_statuses;  // grpc-status the server ended streams with -> streams
  std::string first_pcap;
  uint64_t first_frame = 0;
  // TLS: "" for plaintext, else the cipher suite ("TLS_AES_256_GCM_SHA384", or "TLS" when the
  // ServerHello was not read); the other fields per side as tcp[] (0: client -> server).
  std::string tls;
  uint64_t tls_records[2] = {0, 0};
  uint64_t tls_plaintext_bytes[2] = {0, 0};
  uint64_t tls_key_updates = 0;
  bool tls_decrypted = false;  // both sides decrypted to their end
};

struct AuditReport {
  std::vector<std::string> pcaps;
  uint64_t frames = 0;
  uint64_t captured_bytes = 0;  // sum of captured frame lengths
  uint64_t tcp_segments = 0;
  uint64_t bytes_left_partner = 0;             // TCP payload bytes the partner sent
  uint64_t bytes_reached_partner = 0;          // TCP payload bytes sent to the partner
  uint64_t foreign_connections = 0;            // connections that do not involve the partner
  uint64_t tls_connections = 0;                // of the partner's, those that spoke TLS
  uint64_t tls_records = 0;                    // protected records opened
  uint64_t tls_decrypted_bytes = 0;            // application data decrypted
  std::optional<size_t> tls_key_log_sessions;  // sessions in the key log given
  std::vector<ConnectionReport> connections;   // those that involve the partner
  std::vector<SentMessage> sent;               // in capture order
  // What was checked.
  uint16_t partner_port = 0;
  std::vector<std::string> partner_ips;
  std::vector<uint16_t> registry_ports;
  size_t canaries = 0;
  size_t stored_patterns = 0;
  bool image_signatures = false;
  size_t methods_known = 0;
  std::optional<size_t> allowlist_size;
  std::optional<size_t> ledger_entries;
  std::string ledger_format;
  std::string peers;  // PeerAllowlist::Describe(); "" when peers were not checked
  CaptureMode capture_mode = CaptureMode::kUnknown;
  size_t ledger_matched = 0;
  // Rate-limit refusals accepted against a window row (not one row each; vendor_status.h).
  size_t rate_limit_refusals = 0;
  // Findings.
  std::vector<Violation> violations;  // at most max_listed_violations
  uint64_t violation_count = 0;
  std::map<std::string, uint64_t> violations_by_kind;
  double seconds = 0;

  bool passed() const { return violation_count == 0; }
};

// Runs the audit over the captures, in the given order. Fails (naming the file) only when a
// capture cannot be opened at all or the options are incomplete; everything found inside the
// captures is reported as violations.
absl::StatusOr<AuditReport> AuditCaptures(const std::vector<std::string>& pcaps,
                                          const AuditOptions& options);

// A person's summary: verdict, what was checked, per-connection traffic, messages that left by
// type, and every listed violation with its location.
std::string FormatAuditText(const AuditReport& report);
// The same as JSON (one object; see audit_report.cc for the fields).
std::string FormatAuditJson(const AuditReport& report);

}  // namespace fedface::partner::audit
