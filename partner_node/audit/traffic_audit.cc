#include "partner_node/audit/traffic_audit.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/audit/grpc_wire_decoder.h"
#include "partner_node/audit/tls13_stream_decryptor.h"
#include "partner_node/egress/egress_config.h"
#include "partner_node/egress/release_shape.h"
#include "partner_node/egress/vendor_status.h"

namespace fedface::partner::audit {
namespace {

int Index(Side side) { return static_cast<int>(side); }

// gRPC percent-encodes grpc-message bytes outside 0x20..0x7e, and '%' itself.
std::string PercentDecoded(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int value = 0;
    if (in[i] == '%' && i + 2 < in.size() &&
        absl::SimpleHexAtoi(absl::string_view(in.data() + i + 1, 2), &value)) {
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

struct TupleKey {
  Endpoint a;
  Endpoint b;
  auto operator<=>(const TupleKey&) const = default;
};

TupleKey MakeKey(const Endpoint& x, const Endpoint& y) {
  return x < y ? TupleKey{x, y} : TupleKey{y, x};
}

// A leak found inside a decoded container (a gRPC message or a header block), kept until the
// connection closes so that the same bytes found by the raw stream scan are reported once, at
// the more precise place.
struct ContainedFinding {
  Side side;
  LeakFinding finding;
  uint64_t range_start;  // the container's bytes in the side's TCP stream
  uint64_t range_end;
  AuditLocation where;
  std::string context;
};

// A gRPC message the partner sent, located in its TCP stream, so that what the raw stream scan
// finds is reported at the message (stream, index, offset inside it) that carried it.
struct MessageSpan {
  uint64_t start;  // the length prefix's first byte
  uint64_t end;
  uint32_t stream;
  int index;
  std::string context;
  std::vector<std::pair<uint32_t, uint64_t>> chunks;  // as GrpcMessage::chunks

  // The message offset of stream offset `o`, when `o` is one of the message's bytes.
  std::optional<uint64_t> MessageOffset(uint64_t o) const {
    for (size_t k = chunks.size(); k-- > 0;) {
      if (o >= chunks[k].second) {
        const uint64_t m = chunks[k].first + (o - chunks[k].second);
        const uint64_t chunk_end =
            k + 1 < chunks.size() ? chunks[k + 1].first : std::numeric_limits<uint64_t>::max();
        if (m < chunk_end) return m;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }
};

std::string DescribeLeak(const LeakFinding& f) {
  switch (f.kind) {
    case LeakKind::kCanary:
      return absl::StrCat("canary token '", absl::CHexEscape(f.what), "'");
    case LeakKind::kStoredBytes:
      return absl::StrCat(f.length, " consecutive bytes of ", f.what, " (its bytes ",
                          f.pattern_offset, "..", f.pattern_offset + f.length, ")");
    case LeakKind::kImageSignature:
      return absl::StrCat(f.what, " image signature");
  }
  return "?";
}

ViolationKind LeakViolation(LeakKind kind) {
  switch (kind) {
    case LeakKind::kCanary:
      return ViolationKind::kCanary;
    case LeakKind::kStoredBytes:
      return ViolationKind::kStoredBytes;
    case LeakKind::kImageSignature:
      return ViolationKind::kImageSignature;
  }
  return ViolationKind::kCanary;
}

ViolationKind WireViolation(WireProblemKind kind) {
  switch (kind) {
    case WireProblemKind::kNotHttp2:
    case WireProblemKind::kProtocol:
    case WireProblemKind::kHeaders:
      return ViolationKind::kHttp2;
    case WireProblemKind::kGrpcFraming:
      return ViolationKind::kGrpcFraming;
    case WireProblemKind::kIncomplete:
      return ViolationKind::kIncomplete;
    case WireProblemKind::kUnaudited:
      return ViolationKind::kUnaudited;
  }
  return ViolationKind::kHttp2;
}

class Auditor;

class Connection : public GrpcWireEvents, public TlsDecryptEvents {
 public:
  Connection(Auditor& auditor, int id, const Endpoint& client, const Endpoint& server,
             bool client_is_partner, bool server_is_partner, bool ledger_port,
             const PacketPosition& first);

  void OnSegment(const DecodedFrame& frame, const PacketPosition& pos);
  // True when both directions ended cleanly (FIN with everything delivered) or one was reset.
  bool Complete() const;
  // Finishes reassembly and decoding and reports what is left. Call once.
  ConnectionReport Close();

  const Endpoint& client() const { return report_.client; }
  // True when this connection's opening SYN had sequence number `seq` (or none was seen).
  bool OpenedWith(uint32_t seq) const {
    const std::optional<uint32_t> isn = dirs_[0].reassembler.initial_seq();
    return !isn || *isn == seq;
  }
  bool Outbound(Side side) const { return dirs_[Index(side)].outbound; }
  int id() const { return report_.id; }

 private:
  // One direction: reassembled bytes go to the raw scanner (when the partner sent them) and to
  // the HTTP/2 decoder.
  struct Direction : public StreamSink {
    Connection* connection = nullptr;
    Side side = Side::kClient;
    bool outbound = false;
    TcpReassembler reassembler{this};
    std::unique_ptr<LeakScanner> scanner;
    std::vector<std::pair<uint64_t, PacketPosition>> frames;  // stream offset -> frame
    PacketPosition last_from;                                 // the frame of the latest TCP bytes

    void OnBytes(uint64_t offset, std::string_view bytes, const PacketPosition& from) override;
    void OnGap(uint64_t offset, uint64_t length) override;
    void OnUnsequencedBytes(uint64_t offset, std::string_view bytes, bool conflicting,
                            const PacketPosition& from) override;
  };

  void OnHeaders(Side side, uint32_t stream_id, uint64_t offset, uint64_t end_offset,
                 const std::vector<HeaderField>& fields) override;
  void OnMessage(const GrpcMessage& message) override;
  void OnProblem(const WireProblem& problem) override;
  void OnTlsPlaintext(Side side, uint64_t offset, std::string_view bytes,
                      const PacketPosition& from) override;
  void OnTlsControl(Side side, uint64_t tcp_offset, std::string_view bytes,
                    const PacketPosition& from) override;
  void OnTlsFailure(Side side, uint64_t tcp_offset, const std::string& why) override;

  // In-order TCP bytes of a side: to the TLS decryptor when the connection speaks TLS, else
  // straight to Deliver.
  void Route(Side side, uint64_t offset, std::string_view bytes, const PacketPosition& from);
  // The side's (plaintext) stream: to the raw leak scanner and the HTTP/2 decoder.
  void Deliver(Side side, uint64_t offset, std::string_view bytes, const PacketPosition& from);

  void RecordRefusal(const std::vector<HeaderField>& fields, const AuditLocation& where);
  AuditLocation Where(Side side, uint64_t offset) const;
  AuditLocation WhereFrame(Side side, uint64_t offset, const PacketPosition& pos) const;
  void ScanContainer(Side side, std::string_view bytes, uint64_t range_start, uint64_t range_end,
                     const AuditLocation& where, const std::string& context);

  Auditor& auditor_;
  ConnectionReport report_;
  bool ledger_port_ = false;
  Direction dirs_[2];
  GrpcWireDecoder decoder_{this};
  std::vector<ContainedFinding> contained_;
  std::vector<MessageSpan> spans_[2];  // messages the partner sent, by start offset
  std::set<uint32_t> unknown_streams_;
  bool closed_ = false;
  // Per side, from its first bytes: a TLS record, or anything else (plaintext HTTP/2). Both
  // sides agree in a real session; a TLS server refusing a plaintext client answers with a TLS
  // alert (or nothing), and each side is then checked as what it is.
  enum class Mode { kUnknown, kPlain, kTls } mode_[2] = {Mode::kUnknown, Mode::kUnknown};
  std::unique_ptr<Tls13StreamDecryptor> tls_;
};

class Auditor {
 public:
  Auditor(const AuditOptions& options, AuditReport* report) : options_(options), report_(*report) {}

  absl::Status Run(const std::vector<std::string>& pcaps);

  void AddViolation(ViolationKind kind, std::string detail, AuditLocation where) {
    ++report_.violation_count;
    ++report_.violations_by_kind[ViolationKindName(kind)];
    if (report_.violations.size() < options_.max_listed_violations) {
      report_.violations.push_back({kind, std::move(detail), std::move(where)});
    }
  }
  void AddLeaks(const std::vector<LeakFinding>& findings, const std::string& context,
                const AuditLocation& base, bool offsets_in_stream) {
    for (const LeakFinding& f : findings) {
      AuditLocation where = base;
      if (offsets_in_stream) {
        where.stream_offset = f.offset;
      } else {
        where.stream_offset += f.offset;
      }
      AddViolation(LeakViolation(f.kind), absl::StrCat(DescribeLeak(f), " ", context),
                   std::move(where));
    }
  }
  const std::string& PcapName(int index) const {
    static const std::string kNone;
    return index >= 0 && index < static_cast<int>(report_.pcaps.size()) ? report_.pcaps[index]
                                                                        : kNone;
  }
  const AuditOptions& options() const { return options_; }
  AuditReport& report() { return report_; }

 private:
  struct ClosedTuple {
    Endpoint client;
    bool outbound[2];
    int id;
  };

  void HandleFrame(const DecodedFrame& frame, const PacketPosition& pos);
  void HandleTcp(const DecodedFrame& frame, const PacketPosition& pos);
  bool IsPartner(const Endpoint& e) const;
  bool IsPartnerIp(const IpAddress& ip) const;
  bool IsRegistryPort(uint16_t port) const;
  void Close(std::map<TupleKey, std::unique_ptr<Connection>>::iterator it);
  // An unexpected-peer violation when the partner's new connection is not on the allowlist.
  void CheckPeer(int id, const Endpoint& client, const Endpoint& server, const PacketPosition& pos);
  void MatchLedger();
  void MatchRateLimitWindows();

  const AuditOptions& options_;
  AuditReport& report_;
  std::map<TupleKey, std::unique_ptr<Connection>> open_;
  std::map<TupleKey, ClosedTuple> closed_;
  std::set<TupleKey> foreign_;
  int next_id_ = 1;
};

// ---- Connection ----

Connection::Connection(Auditor& auditor, int id, const Endpoint& client, const Endpoint& server,
                       bool client_is_partner, bool server_is_partner, bool ledger_port,
                       const PacketPosition& first)
    : auditor_(auditor), ledger_port_(ledger_port) {
  report_.id = id;
  report_.client = client;
  report_.server = server;
  report_.partner_is_client = client_is_partner;
  report_.partner_is_server = server_is_partner;
  report_.first_pcap = auditor.PcapName(first.file_index);
  report_.first_frame = first.packet_number;
  for (Side side : {Side::kClient, Side::kServer}) {
    Direction& d = dirs_[Index(side)];
    d.connection = this;
    d.side = side;
    d.outbound = side == Side::kClient ? client_is_partner : server_is_partner;
    if (d.outbound) d.scanner = std::make_unique<LeakScanner>(auditor.options().patterns);
  }
}

void Connection::OnSegment(const DecodedFrame& frame, const PacketPosition& pos) {
  const Side side = frame.src == report_.client ? Side::kClient : Side::kServer;
  if (frame.tcp_flags & kTcpSyn) report_.handshake_seen = true;
  dirs_[Index(side)].reassembler.OnSegment(frame.seq, frame.tcp_flags, frame.payload,
                                           frame.missing_payload_bytes, pos);
}

bool Connection::Complete() const {
  const TcpReassembler& c = dirs_[0].reassembler;
  const TcpReassembler& s = dirs_[1].reassembler;
  return c.rst_seen() || s.rst_seen() || (c.complete() && s.complete());
}

void Connection::Direction::OnBytes(uint64_t offset, std::string_view bytes,
                                    const PacketPosition& from) {
  last_from = from;
  AuditReport& report = connection->auditor_.report();
  (outbound ? report.bytes_left_partner : report.bytes_reached_partner) += bytes.size();
  connection->Route(side, offset, bytes, from);
}

void Connection::Direction::OnGap(uint64_t offset, uint64_t length) {
  if (connection->mode_[Index(side)] == Mode::kTls) {
    connection->tls_->OnGap(side, offset, length);
    return;
  }
  if (scanner) scanner->Flush();
  connection->decoder_.OnGap(side, offset, length);
}

void Connection::Route(Side side, uint64_t offset, std::string_view bytes,
                       const PacketPosition& from) {
  Mode& mode = mode_[Index(side)];
  if (mode == Mode::kUnknown && !bytes.empty()) {
    // A TLS handshake or alert record (0x16 / 0x15, then 0x03), or anything else.
    const bool tls =
        bytes.size() >= 2 && (bytes[0] == 0x16 || bytes[0] == 0x15) && bytes[1] == 0x03;
    mode = tls ? Mode::kTls : Mode::kPlain;
    if (tls && !tls_) {
      tls_ = std::make_unique<Tls13StreamDecryptor>(auditor_.options().tls_keys, this);
      report_.tls = "TLS";
    }
  }
  if (mode == Mode::kTls) {
    tls_->Feed(side, offset, bytes, from);
  } else {
    Deliver(side, offset, bytes, from);
  }
}

void Connection::Deliver(Side side, uint64_t offset, std::string_view bytes,
                         const PacketPosition& from) {
  Direction& d = dirs_[Index(side)];
  if (d.frames.empty() || d.frames.back().second.packet_number != from.packet_number ||
      d.frames.back().second.file_index != from.file_index) {
    d.frames.emplace_back(offset, from);
  }
  if (d.scanner) d.scanner->Feed(offset, bytes);
  decoder_.Feed(side, offset, bytes, from);
}

void Connection::OnTlsPlaintext(Side side, uint64_t offset, std::string_view bytes,
                                const PacketPosition& from) {
  Deliver(side, offset, bytes, from);
}

void Connection::OnTlsControl(Side side, uint64_t tcp_offset, std::string_view bytes,
                              const PacketPosition& from) {
  if (!dirs_[Index(side)].outbound) return;
  // Hellos, certificates, tickets and alerts the partner sent are searched too.
  auditor_.AddLeaks(ScanForLeaks(*auditor_.options().patterns, bytes),
                    "in TLS handshake or alert content (stream offset: the TLS record's)",
                    WhereFrame(side, tcp_offset, from), /*offsets_in_stream=*/false);
}

void Connection::OnTlsFailure(Side side, uint64_t tcp_offset, const std::string& why) {
  AuditLocation where = WhereFrame(side, tcp_offset, dirs_[Index(side)].last_from);
  auditor_.AddViolation(ViolationKind::kTlsUndecrypted,
                        absl::StrCat("TLS connection ", report_.client.ToString(), " -> ",
                                     report_.server.ToString(), " cannot be audited: ", why),
                        std::move(where));
}

void Connection::Direction::OnUnsequencedBytes(uint64_t offset, std::string_view bytes,
                                               bool conflicting, const PacketPosition& from) {
  Auditor& auditor = connection->auditor_;
  const AuditLocation where = connection->WhereFrame(side, offset, from);
  if (conflicting) {
    auditor.AddViolation(
        ViolationKind::kRetransmissionMismatch,
        absl::StrCat(bytes.size(), " retransmitted bytes differ from the first copy sent"), where);
  }
  if (!outbound) return;
  auditor.report().bytes_left_partner += bytes.size();
  auditor.AddLeaks(ScanForLeaks(*auditor.options().patterns, bytes),
                   "in a retransmitted TCP segment", where, /*offsets_in_stream=*/false);
}

AuditLocation Connection::WhereFrame(Side side, uint64_t offset, const PacketPosition& pos) const {
  AuditLocation where;
  where.pcap = auditor_.PcapName(pos.file_index);
  where.frame = pos.packet_number;
  where.connection = report_.id;
  const bool from_client = side == Side::kClient;
  where.from = (from_client ? report_.client : report_.server).ToString();
  where.to = (from_client ? report_.server : report_.client).ToString();
  where.from_partner = dirs_[Index(side)].outbound;
  where.stream_offset = offset;
  return where;
}

AuditLocation Connection::Where(Side side, uint64_t offset) const {
  const auto& frames = dirs_[Index(side)].frames;
  auto it = std::upper_bound(frames.begin(), frames.end(), offset,
                             [](uint64_t o, const auto& entry) { return o < entry.first; });
  PacketPosition pos;
  if (it != frames.begin()) pos = std::prev(it)->second;
  return WhereFrame(side, offset, pos);
}

void Connection::ScanContainer(Side side, std::string_view bytes, uint64_t range_start,
                               uint64_t range_end, const AuditLocation& where,
                               const std::string& context) {
  for (LeakFinding& f : ScanForLeaks(*auditor_.options().patterns, bytes)) {
    ContainedFinding c{side, std::move(f), range_start, range_end, where, context};
    contained_.push_back(std::move(c));
  }
}

void Connection::OnHeaders(Side side, uint32_t stream_id, uint64_t offset, uint64_t end_offset,
                           const std::vector<HeaderField>& fields) {
  AuditLocation where = Where(side, offset);
  where.http2_stream = stream_id;
  if (side == Side::kClient) {
    const HeaderField* path = nullptr;
    const HeaderField* content_type = nullptr;
    for (const HeaderField& f : fields) {
      if (f.name == ":path") path = &f;
      if (f.name == "content-type") content_type = &f;
    }
    if (path) {
      ++report_.rpcs[path->value];
      if (!auditor_.options().catalog->Find(path->value) &&
          unknown_streams_.insert(stream_id).second) {
        auditor_.AddViolation(ViolationKind::kUnknownMethod,
                              absl::StrCat("unknown gRPC method '", absl::CHexEscape(path->value),
                                           "': its messages cannot be classified"),
                              where);
      }
      if (!content_type || !absl::StartsWith(content_type->value, "application/grpc")) {
        auditor_.AddViolation(
            ViolationKind::kNotGrpc,
            absl::StrCat("request content-type '",
                         content_type ? absl::CHexEscape(content_type->value) : "",
                         "' is not application/grpc"),
            where);
      }
    }
  }
  if (side == Side::kServer && report_.partner_is_server && ledger_port_)
    RecordRefusal(fields, where);
  if (!dirs_[Index(side)].outbound) return;
  // Header values are scanned decoded: HPACK's Huffman coding hides them from the raw scan.
  for (const HeaderField& f : fields) {
    const std::string context =
        absl::StrCat("in header '", absl::CHexEscape(f.name), "' of HTTP/2 stream ", stream_id);
    ScanContainer(side, absl::StrCat(f.name, ": ", f.value), offset, end_offset, where, context);
    std::string binary;
    if (absl::EndsWith(f.name, "-bin") && absl::Base64Unescape(f.value, &binary)) {
      ScanContainer(side, binary, offset, end_offset, where,
                    absl::StrCat(context, " (base64-decoded)"));
    }
  }
}

// A non-OK grpc-status the partner sent on the vendor-facing port is a refusal, which the
// partner's egress guard records in the ledger like a message (vendor_status.h): it joins the
// sent messages, as the same bytes the guard recorded.
void Connection::RecordRefusal(const std::vector<HeaderField>& fields, const AuditLocation& where) {
  const HeaderField* status = nullptr;
  const HeaderField* message = nullptr;
  for (const HeaderField& f : fields) {
    if (f.name == "grpc-status") status = &f;
    if (f.name == "grpc-message") message = &f;
  }
  int code = 0;
  if (status == nullptr || !absl::SimpleAtoi(status->value, &code) || code == 0) return;
  const absl::Status refusal(static_cast<absl::StatusCode>(code),
                             message ? PercentDecoded(message->value) : "");
  const std::string bytes = RefusalBytes(refusal);
  SentMessage sent;
  sent.connection = report_.id;
  sent.http2_stream = where.http2_stream;
  sent.index = -1;
  // The fixed rate-limit text is recorded once per window (vendor_status.h): matched apart.
  sent.type = IsRateLimitRefusal(refusal) ? kRateLimitLedgerType : kRefusalLedgerType;
  sent.size = bytes.size();
  sent.sha256 = Sha256Hex(bytes);
  sent.pcap = where.pcap;
  sent.frame = where.frame;
  sent.ledger_scope = true;
  auditor_.report().sent.push_back(std::move(sent));
}

void Connection::OnMessage(const GrpcMessage& m) {
  const int s = Index(m.side);
  ++report_.messages[s];
  report_.message_bytes[s] += m.bytes.size();
  AuditLocation where = Where(m.side, m.start_offset);
  where.http2_stream = m.stream_id;
  where.message_index = m.index;
  const GrpcMethod* method = auditor_.options().catalog->Find(m.path);
  const google::protobuf::Descriptor* type =
      method ? (m.side == Side::kClient ? method->request : method->response) : nullptr;
  const std::string type_name = type ? type->full_name() : "";
  if (type && m.compressed) {
    auditor_.AddViolation(ViolationKind::kCompressedMessage,
                          absl::StrCat("compressed ", type_name, " message of ", m.bytes.size(),
                                       " bytes: its content cannot be inspected"),
                          where);
  } else if (type) {
    const absl::Status check = auditor_.options().catalog->CheckMessage(type, m.bytes);
    if (!check.ok()) {
      auditor_.AddViolation(ViolationKind::kUndecodableMessage, std::string(check.message()),
                            where);
    }
  }
  if (!dirs_[s].outbound) return;
  // A release must have the shape, and every value the grid, that the partner's egress guard
  // gives it (release_shape.h): a number its arithmetic cannot produce (an embedding's
  // component as a rate, a fractional count, ...) is found here even if the guard was bypassed.
  if (type_name == partner::kEvaluationReleaseType && !m.compressed) {
    fedface::v1::EvaluationRelease release;
    if (release.ParseFromArray(m.bytes.data(), static_cast<int>(m.bytes.size()))) {
      const auto& privacy = auditor_.options().release_privacy;
      const absl::Status shape =
          partner::CheckAllowlisted(release, {type_name}, privacy ? &*privacy : nullptr);
      if (!shape.ok()) {
        auditor_.AddViolation(ViolationKind::kReleaseShape, std::string(shape.message()), where);
      }
    }
  }
  const auto& allowed = auditor_.options().allowed_types;
  if (type && allowed && !allowed->count(type_name)) {
    auditor_.AddViolation(ViolationKind::kTypeNotAllowed,
                          absl::StrCat(type_name, " left the partner but is not on the allowlist"),
                          where);
  }
  SentMessage sent;
  sent.connection = report_.id;
  sent.http2_stream = m.stream_id;
  sent.index = m.index;
  sent.path = m.path;
  sent.type = type_name;
  sent.size = m.bytes.size();
  sent.sha256 = Sha256Hex(m.bytes);
  sent.pcap = auditor_.PcapName(m.completed_at.file_index);
  sent.frame = m.completed_at.packet_number;
  sent.ledger_scope = m.side == Side::kServer && report_.partner_is_server && ledger_port_;
  auditor_.report().sent.push_back(std::move(sent));
  MessageSpan span{m.start_offset,
                   m.end_offset,
                   m.stream_id,
                   m.index,
                   absl::StrCat("in gRPC message ", m.index, " (",
                                type_name.empty() ? "unknown type" : type_name,
                                ") of HTTP/2 stream ", m.stream_id),
                   m.chunks};
  // The raw stream scan sees every byte of the message, but not a pattern cut in two by the
  // DATA frame header between two chunks: scan around each cut in the decoded message, keeping
  // only what straddles it.
  const size_t reach = auditor_.options().patterns->lookahead() + 8;
  std::set<std::pair<int, uint64_t>> seen;
  for (size_t k = 1; k < m.chunks.size(); ++k) {
    const uint64_t cut = m.chunks[k].first;
    const uint64_t from = cut > reach ? cut - reach : 0;
    const uint64_t to = std::min<uint64_t>(m.bytes.size(), cut + reach);
    for (LeakFinding& f : ScanForLeaks(*auditor_.options().patterns,
                                       std::string_view(m.bytes).substr(from, to - from))) {
      f.offset += from;
      if (f.offset >= cut || f.offset + f.length <= cut) continue;  // the raw scan has it
      if (!seen.insert({f.pattern, f.offset}).second) continue;
      ContainedFinding c{m.side, f, m.start_offset, m.end_offset, where, span.context};
      c.where.message_offset = f.offset;
      contained_.push_back(std::move(c));
    }
  }
  spans_[s].push_back(std::move(span));
}

void Connection::OnProblem(const WireProblem& p) {
  AuditLocation where = Where(p.side, p.offset);
  where.http2_stream = p.stream_id;
  auditor_.AddViolation(WireViolation(p.kind), p.detail, where);
}

ConnectionReport Connection::Close() {
  closed_ = true;
  for (Direction& d : dirs_) d.reassembler.Finish();
  if (tls_) {
    tls_->Finish();
    const TlsSessionSummary& t = tls_->summary();
    if (!t.cipher_suite.empty()) report_.tls = t.cipher_suite;
    for (int i = 0; i < 2; ++i) {
      report_.tls_records[i] = t.records[i];
      report_.tls_plaintext_bytes[i] = t.plaintext_bytes[i];
      report_.tls_key_updates += t.key_updates[i];
    }
    report_.tls_decrypted = !t.failed[0] && !t.failed[1];
  }
  decoder_.Finish();
  for (const auto& [id, stream] : decoder_.streams()) {
    if (stream.grpc_status) ++report_.grpc_statuses[*stream.grpc_status];
  }
  for (auto& spans : spans_) {
    std::sort(spans.begin(), spans.end(),
              [](const MessageSpan& a, const MessageSpan& b) { return a.start < b.start; });
  }
  for (Direction& d : dirs_) {
    report_.tcp[Index(d.side)] = d.reassembler.stats();
    if (!d.scanner) continue;
    d.scanner->Flush();
    for (const LeakFinding& f : d.scanner->TakeFindings()) {
      const bool covered =
          std::any_of(contained_.begin(), contained_.end(), [&](const ContainedFinding& c) {
            return c.side == d.side && c.finding.kind == f.kind && c.finding.pattern == f.pattern &&
                   c.finding.what == f.what && f.offset >= c.range_start && f.offset < c.range_end;
          });
      if (covered) continue;
      AuditLocation where = Where(d.side, f.offset);
      std::string context = "in the TCP byte stream (HTTP/2 framing)";
      // Messages of concurrent streams interleave: look back over the spans starting before
      // the finding for the one whose chunks hold it.
      const auto& spans = spans_[Index(d.side)];
      auto it =
          std::upper_bound(spans.begin(), spans.end(), f.offset,
                           [](uint64_t o, const MessageSpan& span) { return o < span.start; });
      for (int looked = 0; it != spans.begin() && looked < 256; ++looked) {
        const MessageSpan& span = *--it;
        if (f.offset >= span.end) continue;
        if (auto m = span.MessageOffset(f.offset)) {
          context = span.context;
          where.http2_stream = span.stream;
          where.message_index = span.index;
          where.message_offset = *m;
          break;
        }
      }
      auditor_.AddLeaks({f}, context, where, /*offsets_in_stream=*/true);
    }
    if (d.scanner->dropped_findings() > 0) {
      auditor_.AddViolation(ViolationKind::kUnaudited,
                            absl::StrCat(d.scanner->dropped_findings(),
                                         " more leak findings in this direction not listed"),
                            Where(d.side, 0));
    }
  }
  for (const ContainedFinding& c : contained_) {
    auditor_.AddViolation(LeakViolation(c.finding.kind),
                          absl::StrCat(DescribeLeak(c.finding), " ", c.context), c.where);
  }
  contained_.clear();
  return report_;
}

// ---- Auditor ----

bool Auditor::IsPartnerIp(const IpAddress& ip) const {
  return std::find(options_.partner_ips.begin(), options_.partner_ips.end(), ip) !=
         options_.partner_ips.end();
}

bool Auditor::IsRegistryPort(uint16_t port) const {
  return std::find(options_.registry_ports.begin(), options_.registry_ports.end(), port) !=
         options_.registry_ports.end();
}

bool Auditor::IsPartner(const Endpoint& e) const {
  if (!options_.partner_ips.empty()) return IsPartnerIp(e.ip);
  return options_.partner_port != 0 && e.port == options_.partner_port;
}

void Auditor::HandleFrame(const DecodedFrame& frame, const PacketPosition& pos) {
  switch (frame.kind) {
    case PacketKind::kTcp:
      ++report_.tcp_segments;
      HandleTcp(frame, pos);
      return;
    case PacketKind::kNotIp:
      return;
    case PacketKind::kOtherIp:
    case PacketKind::kFragment: {
      if (options_.partner_ips.empty() || !IsPartnerIp(frame.src.ip)) return;
      AuditLocation where;
      where.pcap = PcapName(pos.file_index);
      where.frame = pos.packet_number;
      where.from = frame.src.ip.ToString();
      where.to = frame.dst.ip.ToString();
      where.from_partner = true;
      report_.bytes_left_partner += frame.payload.size();
      const bool housekeeping = options_.peers && frame.kind == PacketKind::kOtherIp &&
                                IsLinkHousekeeping(frame.ip_protocol, frame.payload);
      if (!housekeeping) {
        std::string what = frame.kind == PacketKind::kFragment
                               ? std::string("IP fragment sent by the partner (not reassembled)")
                               : absl::StrCat("IP protocol ", frame.ip_protocol, " packet of ",
                                              frame.payload.size(), " bytes sent by the partner");
        if (options_.peers) {
          AddViolation(ViolationKind::kUnexpectedPeer,
                       absl::StrCat(what, " to ", where.to,
                                    frame.src.port ? absl::StrCat(" port ", frame.dst.port) : "",
                                    ": only TCP to allowed peers may leave"),
                       where);
        } else {
          AddViolation(ViolationKind::kUnaudited,
                       frame.kind == PacketKind::kFragment
                           ? what
                           : absl::StrCat(what, " (only TCP is decoded)"),
                       where);
        }
      }
      AddLeaks(ScanForLeaks(*options_.patterns, frame.payload), "in a non-TCP packet", where,
               false);
      return;
    }
    case PacketKind::kMalformed: {
      AuditLocation where;
      where.pcap = PcapName(pos.file_index);
      where.frame = pos.packet_number;
      AddViolation(ViolationKind::kUnaudited,
                   absl::StrCat("frame cannot be decoded: ", frame.problem), where);
      return;
    }
  }
}

void Auditor::HandleTcp(const DecodedFrame& frame, const PacketPosition& pos) {
  const TupleKey key = MakeKey(frame.src, frame.dst);
  // A connection to a registry port is the partner's pull: the partner is its client.
  const bool src_partner = IsPartner(frame.src) || IsRegistryPort(frame.dst.port);
  const bool dst_partner = IsPartner(frame.dst) || IsRegistryPort(frame.src.port);
  if (!src_partner && !dst_partner) {
    if (foreign_.insert(key).second) ++report_.foreign_connections;
    return;
  }
  const bool opening = (frame.tcp_flags & kTcpSyn) && !(frame.tcp_flags & kTcpAck);
  auto it = open_.find(key);
  if (it != open_.end() && opening &&
      (it->second->Complete() || frame.src != it->second->client() ||
       !it->second->OpenedWith(frame.seq))) {
    Close(it);  // the tuple is reused by a new connection
    it = open_.end();
  }
  if (it == open_.end()) {
    auto closed = closed_.find(key);
    if (closed != closed_.end() && !opening) {
      // A late segment of a connection already closed (e.g. a retransmitted FIN).
      if (frame.payload.empty()) return;
      const Side side = frame.src == closed->second.client ? Side::kClient : Side::kServer;
      if (!closed->second.outbound[Index(side)]) return;
      AuditLocation where;
      where.pcap = PcapName(pos.file_index);
      where.frame = pos.packet_number;
      where.connection = closed->second.id;
      where.from = frame.src.ToString();
      where.to = frame.dst.ToString();
      where.from_partner = true;
      report_.bytes_left_partner += frame.payload.size();
      AddLeaks(ScanForLeaks(*options_.patterns, frame.payload),
               "in a TCP segment after the connection closed", where, false);
      return;
    }
    if (closed != closed_.end()) closed_.erase(closed);
    // Who opened the connection: the SYN says; without it, the partner's port is the server's.
    Endpoint client = frame.src;
    Endpoint server = frame.dst;
    const bool syn_ack = (frame.tcp_flags & kTcpSyn) && (frame.tcp_flags & kTcpAck);
    if (syn_ack) std::swap(client, server);
    if (!opening && !syn_ack) {
      const uint16_t port = options_.partner_port;
      const bool src_is_server = IsRegistryPort(frame.src.port) != IsRegistryPort(frame.dst.port)
                                     ? IsRegistryPort(frame.src.port)
                                 : port != 0 ? (frame.src.port == port && frame.dst.port != port)
                                             : frame.src.port < frame.dst.port;
      if (src_is_server) std::swap(client, server);
    }
    const bool ledger_port = options_.partner_port == 0 || server.port == options_.partner_port;
    const bool to_registry = IsRegistryPort(server.port);
    auto conn = std::make_unique<Connection>(*this, next_id_++, client, server,
                                             IsPartner(client) || to_registry,
                                             IsPartner(server) && !to_registry, ledger_port, pos);
    CheckPeer(conn->id(), client, server, pos);
    it = open_.emplace(key, std::move(conn)).first;
  }
  it->second->OnSegment(frame, pos);
  if (it->second->Complete()) Close(it);
}

void Auditor::CheckPeer(int id, const Endpoint& client, const Endpoint& server,
                        const PacketPosition& pos) {
  if (!options_.peers) return;
  // Who is the partner as the connection itself decides it: on loopback (no partner addresses)
  // a registry port makes the partner the client of its pulls.
  const bool to_registry = IsRegistryPort(server.port);
  const bool partner_client = IsPartner(client) || to_registry;
  const bool partner_server = IsPartner(server) && !to_registry;
  if (partner_client && partner_server) return;  // the partner with itself: nothing left it
  const PeerAllowlist& peers = *options_.peers;
  if (partner_client ? peers.AllowsOutgoing(server) : peers.AllowsIncoming(client, server)) return;
  AuditLocation where;
  where.pcap = PcapName(pos.file_index);
  where.frame = pos.packet_number;
  where.connection = id;
  where.from = client.ToString();
  where.to = server.ToString();
  where.from_partner = partner_client;
  AddViolation(ViolationKind::kUnexpectedPeer,
               partner_client
                   ? absl::StrCat("the partner opened connection ", client.ToString(), " -> ",
                                  server.ToString(), " to a peer not on the allowlist")
                   : absl::StrCat(client.ToString(), " opened connection ", client.ToString(),
                                  " -> ", server.ToString(),
                                  " to the partner, not on an allowed port or from an "
                                  "allowed address"),
               std::move(where));
}

void Auditor::Close(std::map<TupleKey, std::unique_ptr<Connection>>::iterator it) {
  Connection& c = *it->second;
  closed_[it->first] = {c.client(), {c.Outbound(Side::kClient), c.Outbound(Side::kServer)}, c.id()};
  report_.connections.push_back(c.Close());
  const ConnectionReport& closed = report_.connections.back();
  if (!closed.tls.empty()) {
    ++report_.tls_connections;
    report_.tls_records += closed.tls_records[0] + closed.tls_records[1];
    report_.tls_decrypted_bytes += closed.tls_plaintext_bytes[0] + closed.tls_plaintext_bytes[1];
  }
  open_.erase(it);
}

// Rate-limit refusals (vendor_status.h): the partner records one row per vendor, kind and window
// and sends the same fixed text to every call that window refuses. So each window row must be
// seen on the wire at least once, and every rate-limit trailer needs a window row with the same
// bytes; how many trailers a row covers is not bounded (the text carries no partner data, and
// the audit cannot tell the windows of several vendors apart on the wire). Their order among
// the other messages is not checked either: they are matched as a count per text.
void Auditor::MatchRateLimitWindows() {
  const LoadedLedger& ledger = *options_.ledger;
  std::map<std::string, std::vector<const LedgerRecord*>> rows;  // sha256 -> window rows
  for (const LedgerRecord& r : ledger.records) {
    if (r.message_type == kRateLimitLedgerType) rows[r.sha256].push_back(&r);
  }
  std::map<std::string, std::vector<const SentMessage*>> trailers;  // sha256 -> refusals seen
  for (const SentMessage& m : report_.sent) {
    if (m.ledger_scope && m.type == kRateLimitLedgerType) trailers[m.sha256].push_back(&m);
  }
  for (const auto& [sha, seen] : trailers) {
    auto found = rows.find(sha);
    if (found == rows.end()) {
      AuditLocation w;
      w.pcap = seen[0]->pcap;
      w.frame = seen[0]->frame;
      w.connection = seen[0]->connection;
      w.http2_stream = seen[0]->http2_stream;
      w.from_partner = true;
      AddViolation(ViolationKind::kLedgerMismatch,
                   absl::StrCat(seen.size(), " rate-limit refusal(s) (sha256 ", sha,
                                ") have no rate-limit window row in the ledger"),
                   w);
      continue;
    }
    report_.rate_limit_refusals += seen.size();
    report_.ledger_matched += std::min(found->second.size(), seen.size());
    for (size_t i = seen.size(); i < found->second.size(); ++i) {
      AddViolation(ViolationKind::kLedgerMismatch,
                   absl::StrCat("ledger entry seq ", found->second[i]->seq,
                                " (rate-limit window) has fewer refusals in the capture than "
                                "window rows"),
                   {});
    }
    rows.erase(found);
  }
  for (const auto& [sha, unseen] : rows) {
    for (const LedgerRecord* r : unseen) {
      AddViolation(ViolationKind::kLedgerMismatch,
                   absl::StrCat("ledger entry seq ", r->seq,
                                " (rate-limit window) was not seen in the capture"),
                   {});
    }
  }
}

void Auditor::MatchLedger() {
  if (!options_.ledger) return;
  const LoadedLedger& ledger = *options_.ledger;
  report_.ledger_entries = ledger.records.size();
  report_.ledger_format = ledger.format;
  if (ledger.chain_verified && !ledger.chain_ok) {
    AddViolation(ViolationKind::kLedgerChain,
                 absl::StrCat("the ledger's hash chain is broken at ", ledger.chain_problem), {});
  }
  MatchRateLimitWindows();
  std::vector<const SentMessage*> sent;
  for (const SentMessage& m : report_.sent) {
    if (m.ledger_scope && m.type != kRateLimitLedgerType) sent.push_back(&m);
  }
  std::vector<LedgerRecord> records;
  for (const LedgerRecord& r : ledger.records) {
    if (r.message_type != kRateLimitLedgerType) records.push_back(r);
  }
  auto same = [](const SentMessage& m, const LedgerRecord& r) {
    return m.type == r.message_type && m.sha256 == r.sha256 &&
           static_cast<int64_t>(m.size) == r.size_bytes;
  };
  auto where_of = [](const SentMessage& m) {
    AuditLocation w;
    w.pcap = m.pcap;
    w.frame = m.frame;
    w.connection = m.connection;
    w.http2_stream = m.http2_stream;
    w.message_index = m.index;
    w.from_partner = true;
    return w;
  };
  size_t in_order = 0;
  while (in_order < sent.size() && in_order < records.size() &&
         same(*sent[in_order], records[in_order])) {
    ++in_order;
  }
  if (in_order == sent.size() && in_order == records.size()) {
    report_.ledger_matched += in_order;
    return;
  }
  // Not one-to-one in order: say which messages have no entry and which entries no message.
  std::multimap<std::string, size_t> unmatched_records;
  for (size_t i = 0; i < records.size(); ++i) {
    const LedgerRecord& r = records[i];
    unmatched_records.emplace(absl::StrCat(r.message_type, "/", r.size_bytes, "/", r.sha256), i);
  }
  bool any_difference = false;
  for (const SentMessage* m : sent) {
    auto found = unmatched_records.find(absl::StrCat(m->type, "/", m->size, "/", m->sha256));
    if (found != unmatched_records.end()) {
      unmatched_records.erase(found);
      ++report_.ledger_matched;
      continue;
    }
    any_difference = true;
    AddViolation(ViolationKind::kLedgerMismatch,
                 absl::StrCat("sent ", m->type.empty() ? "message of unknown type" : m->type, " (",
                              m->size, " bytes, sha256 ", m->sha256, ") has no ledger entry"),
                 where_of(*m));
  }
  std::vector<size_t> missing;
  for (const auto& [k, i] : unmatched_records) missing.push_back(i);
  std::sort(missing.begin(), missing.end());
  for (size_t i : missing) {
    any_difference = true;
    const LedgerRecord& r = records[i];
    AddViolation(ViolationKind::kLedgerMismatch,
                 absl::StrCat("ledger entry seq ", r.seq, " (", r.message_type, ", ", r.size_bytes,
                              " bytes, sha256 ", r.sha256, ") was not seen in the capture"),
                 {});
  }
  if (!any_difference) {
    const LedgerRecord& r = records[in_order];
    AddViolation(
        ViolationKind::kLedgerMismatch,
        absl::StrCat("the capture holds the ledger's messages in another order: sent "
                     "message ",
                     in_order + 1, " is ", sent[in_order]->type, " sha256 ", sent[in_order]->sha256,
                     ", ledger seq ", r.seq, " is ", r.message_type, " sha256 ", r.sha256),
        where_of(*sent[in_order]));
  }
}

absl::Status Auditor::Run(const std::vector<std::string>& pcaps) {
  std::vector<std::unique_ptr<CaptureReader>> readers;
  for (const std::string& path : pcaps) {
    ASSIGN_OR_RETURN(std::unique_ptr<CaptureReader> reader, CaptureReader::Open(path));
    readers.push_back(std::move(reader));
    report_.pcaps.push_back(path);
  }
  for (size_t i = 0; i < readers.size(); ++i) {
    CaptureReader& reader = *readers[i];
    CaptureReader::Frame frame;
    for (;;) {
      absl::StatusOr<bool> more = reader.Next(&frame);
      if (!more.ok()) {
        AuditLocation where;
        where.pcap = reader.path();
        where.frame = frame.number + 1;
        AddViolation(ViolationKind::kCaptureDamaged, std::string(more.status().message()), where);
        break;
      }
      if (!*more) break;
      ++report_.frames;
      report_.captured_bytes += frame.caplen;
      const PacketPosition pos{static_cast<int>(i), frame.number, frame.time_usec};
      HandleFrame(DecodeFrame(reader.linktype(), frame.data, frame.caplen, frame.wirelen), pos);
    }
  }
  while (!open_.empty()) Close(open_.begin());
  if (report_.connections.empty()) {
    // An audit that saw nothing of the partner proves nothing: a wrong port, address or capture.
    AddViolation(ViolationKind::kNoPartnerTraffic,
                 absl::StrCat("no TCP connection of the partner (port ", options_.partner_port,
                              options_.partner_ips.empty() ? "" : " or its addresses", ") in ",
                              report_.frames, " frames; ", report_.foreign_connections,
                              " other connections ignored"),
                 {});
  }
  std::sort(report_.connections.begin(), report_.connections.end(),
            [](const ConnectionReport& a, const ConnectionReport& b) { return a.id < b.id; });
  MatchLedger();
  return absl::OkStatus();
}

}  // namespace

const char* ViolationKindName(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kCanary:
      return "canary";
    case ViolationKind::kStoredBytes:
      return "stored-bytes";
    case ViolationKind::kImageSignature:
      return "image-signature";
    case ViolationKind::kUnknownMethod:
      return "unknown-method";
    case ViolationKind::kUndecodableMessage:
      return "undecodable-message";
    case ViolationKind::kTypeNotAllowed:
      return "type-not-allowed";
    case ViolationKind::kReleaseShape:
      return "release-shape";
    case ViolationKind::kCompressedMessage:
      return "compressed-message";
    case ViolationKind::kNotGrpc:
      return "not-grpc";
    case ViolationKind::kHttp2:
      return "http2";
    case ViolationKind::kGrpcFraming:
      return "grpc-framing";
    case ViolationKind::kIncomplete:
      return "incomplete";
    case ViolationKind::kUnaudited:
      return "unaudited";
    case ViolationKind::kRetransmissionMismatch:
      return "retransmission-mismatch";
    case ViolationKind::kLedgerMismatch:
      return "ledger-mismatch";
    case ViolationKind::kLedgerChain:
      return "ledger-chain";
    case ViolationKind::kCaptureDamaged:
      return "capture-damaged";
    case ViolationKind::kNoPartnerTraffic:
      return "no-partner-traffic";
    case ViolationKind::kTlsUndecrypted:
      return "tls-undecrypted";
    case ViolationKind::kUnexpectedPeer:
      return "unexpected-peer";
  }
  return "?";
}

const char* CaptureModeName(CaptureMode mode) {
  switch (mode) {
    case CaptureMode::kNamespace:
      return "namespace";
    case CaptureMode::kLoopback:
      return "loopback";
    case CaptureMode::kUnknown:
      return "unknown";
  }
  return "unknown";
}

absl::StatusOr<AuditReport> AuditCaptures(const std::vector<std::string>& pcaps,
                                          const AuditOptions& options) {
  if (!options.patterns || !options.catalog) {
    return absl::InvalidArgumentError("AuditCaptures: patterns and catalog are required");
  }
  if (options.partner_port == 0 && options.partner_ips.empty()) {
    return absl::InvalidArgumentError(
        "the partner is not identified: give its vendor-facing port and/or its addresses");
  }
  if (pcaps.empty()) return absl::InvalidArgumentError("no capture file to audit");
  const auto start = std::chrono::steady_clock::now();
  AuditReport report;
  report.partner_port = options.partner_port;
  for (const IpAddress& ip : options.partner_ips) report.partner_ips.push_back(ip.ToString());
  report.registry_ports = options.registry_ports;
  report.canaries = options.patterns->canary_count();
  report.stored_patterns = options.patterns->stored_count();
  report.image_signatures = options.patterns->image_signatures();
  report.methods_known = options.catalog->methods().size();
  if (options.allowed_types) report.allowlist_size = options.allowed_types->size();
  if (options.tls_keys) report.tls_key_log_sessions = options.tls_keys->sessions();
  if (options.peers) report.peers = options.peers->Describe();
  report.capture_mode = options.capture_mode;
  Auditor auditor(options, &report);
  RETURN_IF_ERROR(auditor.Run(pcaps));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace fedface::partner::audit
