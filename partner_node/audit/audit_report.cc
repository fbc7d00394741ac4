// Rendering an AuditReport for a person (text) and for machines (JSON).
//
// JSON fields: verdict ("pass"|"fail"), capture_mode ("namespace"|"loopback"|"unknown"),
// violation_count, violations_by_kind {kind: n},
// violations [{kind, detail, where {pcap, frame, connection, from, to, from_partner,
// stream_offset, http2_stream, message_index, message_offset}}], captures [paths], frames,
// captured_bytes, seconds, throughput_mb_per_s, bytes_left_partner, bytes_reached_partner,
// checked {partner_port, partner_ips, registry_ports, canaries, stored_patterns, image_signatures,
// methods_known, allowlist_size|null, ledger_entries|null, ledger_format, ledger_matched,
// rate_limit_refusals, peers|null}, connections [{id, client, server, partner_role, handshake_seen,
// bytes {client_to_server, server_to_client}, messages {...}, message_bytes {...},
// retransmitted_bytes, reordered_segments, gaps, gap_bytes, rpcs {path: n}, grpc_statuses {code:
// n}, tls null|{cipher_suite, decrypted, records {...}, plaintext_bytes {...}, key_updates}}], tls
// {connections, records, decrypted_bytes, key_log_sessions|null}, sent_messages [{connection,
// http2_stream, index, path, type, size, sha256, pcap, frame, ledger_scope}], sent_by_type {type:
// {messages, bytes}}.
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "partner_node/audit/traffic_audit.h"

namespace fedface::partner::audit {
namespace {

const char* PartnerRole(const ConnectionReport& c) {
  if (c.partner_is_client && c.partner_is_server) return "both";
  if (c.partner_is_server) return "server";
  if (c.partner_is_client) return "client";
  return "none";
}

uint64_t Sent(const ConnectionReport& c, int side) {
  return c.tcp[side].delivered_bytes + c.tcp[side].conflicting_bytes;
}

std::string FormatLocation(const AuditLocation& w) {
  std::vector<std::string> parts;
  if (!w.pcap.empty()) {
    parts.push_back(w.frame ? absl::StrCat(w.pcap, " frame ", w.frame) : w.pcap);
  }
  if (w.connection) {
    parts.push_back(absl::StrCat("connection #", w.connection,
                                 w.from.empty() ? "" : absl::StrCat(" ", w.from, " -> ", w.to),
                                 w.from_partner ? " (sent by the partner)" : ""));
  } else if (!w.from.empty()) {
    parts.push_back(absl::StrCat(w.from, " -> ", w.to));
  }
  if (w.connection && !w.from.empty())
    parts.push_back(absl::StrCat("TCP offset ", w.stream_offset));
  if (w.http2_stream) parts.push_back(absl::StrCat("HTTP/2 stream ", w.http2_stream));
  if (w.message_index >= 0) {
    parts.push_back(absl::StrCat("message ", w.message_index, " offset ", w.message_offset));
  }
  return parts.empty() ? "(not tied to a frame)" : absl::StrJoin(parts, ", ");
}

// What the verdict covers, by how the capture was made.
std::string CaptureModeText(CaptureMode mode) {
  switch (mode) {
    case CaptureMode::kNamespace:
      return "capture: the partner's own network namespace (every packet of its interface)";
    case CaptureMode::kLoopback:
      return "capture: loopback, which other processes of the host share (the partner's whole "
             "egress is not proven)";
    case CaptureMode::kUnknown:
      break;
  }
  return "capture mode: unknown (give --capture-mode)";
}

double MegabytesPerSecond(const AuditReport& r) {
  return r.seconds > 0 ? r.captured_bytes / r.seconds / 1e6 : 0.0;
}

std::map<std::string, std::pair<uint64_t, uint64_t>> SentByType(const AuditReport& r) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;
  for (const SentMessage& m : r.sent) {
    auto& entry = by_type[m.type.empty() ? "(unknown)" : m.type];
    ++entry.first;
    entry.second += m.size;
  }
  return by_type;
}

}  // namespace

std::string FormatAuditText(const AuditReport& r) {
  std::string out;
  absl::StrAppend(&out, "fedface traffic audit: ",
                  r.passed() ? "PASS" : absl::StrCat("FAIL (", r.violation_count, " violations)"),
                  "; ", CaptureModeText(r.capture_mode), "\n");
  absl::StrAppend(&out, "captures: ", absl::StrJoin(r.pcaps, ", "), "\n");
  absl::StrAppend(&out,
                  absl::StrFormat("  %d frames, %d bytes captured, audited in %.3f s (%.1f MB/s)\n",
                                  r.frames, r.captured_bytes, r.seconds, MegabytesPerSecond(r)));
  absl::StrAppend(&out, "partner: ",
                  r.partner_port ? absl::StrCat("vendor-facing port ", r.partner_port)
                                 : std::string("no vendor-facing port"),
                  r.partner_ips.empty()
                      ? std::string("; addresses not given (only traffic on its ports counts)")
                      : absl::StrCat("; addresses ", absl::StrJoin(r.partner_ips, ", ")),
                  r.registry_ports.empty() ? std::string()
                                           : absl::StrCat("; client of registry port ",
                                                          absl::StrJoin(r.registry_ports, ", ")),
                  "\n");
  absl::StrAppend(
      &out, "checked: ", r.canaries, " canaries, ", r.stored_patterns, " stored byte strings, ",
      r.image_signatures ? "image signatures (JPEG PNG WebP GIF TIFF BMP)" : "no image signatures",
      ", ", r.methods_known, " gRPC methods known, ",
      r.allowlist_size ? absl::StrCat("allowlist of ", *r.allowlist_size, " types")
                       : std::string("no allowlist (declared types only)"),
      ", ",
      r.ledger_entries ? absl::StrCat("ledger (", r.ledger_format, ") of ", *r.ledger_entries,
                                      " entries, ", r.ledger_matched, " matched",
                                      r.rate_limit_refusals
                                          ? absl::StrCat(" (", r.rate_limit_refusals,
                                                         " rate-limit refusals on window rows)")
                                          : std::string())
                       : std::string("no ledger"),
      "\n");
  absl::StrAppend(&out, "peers: ", r.peers.empty() ? std::string("not checked") : r.peers, "\n");
  absl::StrAppend(&out, "TLS: ",
                  r.tls_key_log_sessions
                      ? absl::StrCat("key log of ", *r.tls_key_log_sessions, " sessions; ")
                      : std::string("no key log (TLS connections cannot be audited); "),
                  r.tls_connections, " TLS connections, ", r.tls_records, " records opened, ",
                  r.tls_decrypted_bytes, " bytes of application data decrypted and checked\n");
  absl::StrAppend(&out, "bytes that left the partner: ", r.bytes_left_partner,
                  " (TCP payload); bytes it received: ", r.bytes_reached_partner, "\n");
  absl::StrAppend(&out, "connections involving the partner: ", r.connections.size());
  if (r.foreign_connections) {
    absl::StrAppend(&out, " (", r.foreign_connections, " others ignored)");
  }
  absl::StrAppend(&out, "\n");
  for (const ConnectionReport& c : r.connections) {
    const int partner_side = c.partner_is_server ? 1 : 0;
    std::vector<std::string> rpcs;
    for (const auto& [path, n] : c.rpcs) rpcs.push_back(absl::StrCat(path, " x", n));
    uint64_t retransmitted = 0, reordered = 0, gaps = 0;
    for (const ReassemblyStats& s : c.tcp) {
      retransmitted += s.duplicate_bytes + s.conflicting_bytes + s.uncompared_bytes;
      reordered += s.reordered_segments;
      gaps += s.gaps;
    }
    absl::StrAppend(&out, "  #", c.id, " ", c.client.ToString(), " -> ", c.server.ToString(),
                    " [partner is ", PartnerRole(c), "] partner sent ", Sent(c, partner_side),
                    " B in ", c.messages[partner_side], " messages, received ",
                    Sent(c, 1 - partner_side), " B in ", c.messages[1 - partner_side],
                    " messages; retransmitted ", retransmitted, " B, reordered ", reordered,
                    ", gaps ", gaps, "\n");
    if (!c.tls.empty()) {
      absl::StrAppend(&out, "      TLS ", c.tls,
                      c.tls_decrypted ? ", decrypted" : ", NOT decrypted", ": records ",
                      c.tls_records[0], "/", c.tls_records[1],
                      " (client/server), application data ", c.tls_plaintext_bytes[0], "/",
                      c.tls_plaintext_bytes[1], " B, key updates ", c.tls_key_updates, "\n");
    }
    if (!rpcs.empty()) absl::StrAppend(&out, "      RPCs: ", absl::StrJoin(rpcs, ", "), "\n");
    if (!c.grpc_statuses.empty()) {
      std::vector<std::string> statuses;
      for (const auto& [code, n] : c.grpc_statuses) {
        statuses.push_back(absl::StrCat("status ", code, " x", n));
      }
      absl::StrAppend(&out, "      gRPC outcomes: ", absl::StrJoin(statuses, ", "), "\n");
    }
  }
  uint64_t sent_bytes = 0;
  for (const SentMessage& m : r.sent) sent_bytes += m.size;
  absl::StrAppend(&out, "gRPC messages that left the partner: ", r.sent.size(), " (", sent_bytes,
                  " bytes)\n");
  for (const auto& [type, counts] : SentByType(r)) {
    absl::StrAppend(&out, "  ", type, ": ", counts.first, " messages, ", counts.second, " bytes\n");
  }
  if (!r.passed()) {
    std::vector<std::string> kinds;
    for (const auto& [kind, n] : r.violations_by_kind) kinds.push_back(absl::StrCat(kind, " ", n));
    absl::StrAppend(&out, "violations: ", absl::StrJoin(kinds, ", "), "\n");
    for (size_t i = 0; i < r.violations.size(); ++i) {
      const Violation& v = r.violations[i];
      absl::StrAppend(&out, "  ", i + 1, ". [", ViolationKindName(v.kind), "] ", v.detail, "\n",
                      "     at ", FormatLocation(v.where), "\n");
    }
    if (r.violations.size() < r.violation_count) {
      absl::StrAppend(&out, "  ... and ", r.violation_count - r.violations.size(),
                      " more (counted above)\n");
    }
  }
  return out;
}

std::string FormatAuditJson(const AuditReport& r) {
  using nlohmann::json;
  json doc;
  doc["verdict"] = r.passed() ? "pass" : "fail";
  doc["capture_mode"] = CaptureModeName(r.capture_mode);
  doc["violation_count"] = r.violation_count;
  doc["violations_by_kind"] = r.violations_by_kind;
  json violations = json::array();
  for (const Violation& v : r.violations) {
    const AuditLocation& w = v.where;
    json where = {{"pcap", w.pcap},
                  {"frame", w.frame},
                  {"connection", w.connection},
                  {"from", w.from},
                  {"to", w.to},
                  {"from_partner", w.from_partner},
                  {"stream_offset", w.stream_offset},
                  {"http2_stream", w.http2_stream},
                  {"message_index", w.message_index},
                  {"message_offset", w.message_offset}};
    violations.push_back(
        {{"kind", ViolationKindName(v.kind)}, {"detail", v.detail}, {"where", where}});
  }
  doc["violations"] = violations;
  doc["captures"] = r.pcaps;
  doc["frames"] = r.frames;
  doc["captured_bytes"] = r.captured_bytes;
  doc["seconds"] = r.seconds;
  doc["throughput_mb_per_s"] = MegabytesPerSecond(r);
  doc["bytes_left_partner"] = r.bytes_left_partner;
  doc["bytes_reached_partner"] = r.bytes_reached_partner;
  doc["checked"] = {{"partner_port", r.partner_port},
                    {"partner_ips", r.partner_ips},
                    {"registry_ports", r.registry_ports},
                    {"canaries", r.canaries},
                    {"stored_patterns", r.stored_patterns},
                    {"image_signatures", r.image_signatures},
                    {"methods_known", r.methods_known},
                    {"allowlist_size", r.allowlist_size ? json(*r.allowlist_size) : json(nullptr)},
                    {"ledger_entries", r.ledger_entries ? json(*r.ledger_entries) : json(nullptr)},
                    {"ledger_format", r.ledger_format},
                    {"ledger_matched", r.ledger_matched},
                    {"rate_limit_refusals", r.rate_limit_refusals},
                    {"peers", r.peers.empty() ? json(nullptr) : json(r.peers)}};
  json connections = json::array();
  for (const ConnectionReport& c : r.connections) {
    uint64_t retransmitted = 0, reordered = 0, gaps = 0, gap_bytes = 0;
    for (const ReassemblyStats& s : c.tcp) {
      retransmitted += s.duplicate_bytes + s.conflicting_bytes + s.uncompared_bytes;
      reordered += s.reordered_segments;
      gaps += s.gaps;
      gap_bytes += s.gap_bytes;
    }
    connections.push_back(
        {{"id", c.id},
         {"client", c.client.ToString()},
         {"server", c.server.ToString()},
         {"partner_role", PartnerRole(c)},
         {"handshake_seen", c.handshake_seen},
         {"bytes", {{"client_to_server", Sent(c, 0)}, {"server_to_client", Sent(c, 1)}}},
         {"messages", {{"client_to_server", c.messages[0]}, {"server_to_client", c.messages[1]}}},
         {"message_bytes",
          {{"client_to_server", c.message_bytes[0]}, {"server_to_client", c.message_bytes[1]}}},
         {"retransmitted_bytes", retransmitted},
         {"reordered_segments", reordered},
         {"gaps", gaps},
         {"gap_bytes", gap_bytes},
         {"rpcs", c.rpcs},
         {"grpc_statuses",
          [&] {
            json statuses = json::object();
            for (const auto& [code, n] : c.grpc_statuses) statuses[std::to_string(code)] = n;
            return statuses;
          }()},
         {"tls", c.tls.empty() ? json(nullptr)
                               : json{{"cipher_suite", c.tls},
                                      {"decrypted", c.tls_decrypted},
                                      {"records",
                                       {{"client_to_server", c.tls_records[0]},
                                        {"server_to_client", c.tls_records[1]}}},
                                      {"plaintext_bytes",
                                       {{"client_to_server", c.tls_plaintext_bytes[0]},
                                        {"server_to_client", c.tls_plaintext_bytes[1]}}},
                                      {"key_updates", c.tls_key_updates}}}});
  }
  doc["connections"] = connections;
  doc["tls"] = {
      {"connections", r.tls_connections},
      {"records", r.tls_records},
      {"decrypted_bytes", r.tls_decrypted_bytes},
      {"key_log_sessions", r.tls_key_log_sessions ? json(*r.tls_key_log_sessions) : json(nullptr)}};
  json sent = json::array();
  for (const SentMessage& m : r.sent) {
    sent.push_back({{"connection", m.connection},
                    {"http2_stream", m.http2_stream},
                    {"index", m.index},
                    {"path", m.path},
                    {"type", m.type},
                    {"size", m.size},
                    {"sha256", m.sha256},
                    {"pcap", m.pcap},
                    {"frame", m.frame},
                    {"ledger_scope", m.ledger_scope}});
  }
  doc["sent_messages"] = sent;
  json by_type = json::object();
  for (const auto& [type, counts] : SentByType(r)) {
    by_type[type] = {{"messages", counts.first}, {"bytes", counts.second}};
  }
  doc["sent_by_type"] = by_type;
  // Paths and details may hold arbitrary bytes; replace invalid UTF-8 instead of throwing.
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace fedface::partner::audit
