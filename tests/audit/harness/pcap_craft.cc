#include "tests/audit/harness/pcap_craft.h"

#include <nghttp2/nghttp2.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace fedface::audit_test {
namespace {

constexpr uint32_t kClientIsn = 0xFFFFFF00u;  // wraps around 2^32 within the first 256 bytes
constexpr uint32_t kServerIsn = 0x12345678u;

void Put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v & 0xFF);
}
void Put32(std::string& s, uint32_t v) {
  Put16(s, static_cast<uint16_t>(v >> 16));
  Put16(s, static_cast<uint16_t>(v & 0xFFFF));
}

std::string TcpHeader(const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack,
                      uint8_t flags) {
  std::string h;
  Put16(h, src.port);
  Put16(h, dst.port);
  Put32(h, seq);
  Put32(h, ack);
  h += static_cast<char>(5 << 4);  // data offset: 20 bytes
  h += static_cast<char>(flags);
  Put16(h, 65535);  // window
  Put16(h, 0);      // checksum (not checked by the audit)
  Put16(h, 0);      // urgent pointer
  return h;
}

std::string IpPacket(const Endpoint& src, const Endpoint& dst, const std::string& transport) {
  std::string ip;
  if (!src.ip.v6) {
    ip += static_cast<char>(0x45);
    ip += '\0';
    Put16(ip, static_cast<uint16_t>(20 + transport.size()));
    Put16(ip, 0);       // id
    Put16(ip, 0x4000);  // don't fragment
    ip += static_cast<char>(64);
    ip += static_cast<char>(6);
    Put16(ip, 0);
    ip.append(reinterpret_cast<const char*>(src.ip.bytes.data()), 4);
    ip.append(reinterpret_cast<const char*>(dst.ip.bytes.data()), 4);
  } else {
    Put32(ip, 0x60000000u);
    Put16(ip, static_cast<uint16_t>(transport.size()));
    ip += static_cast<char>(6);
    ip += static_cast<char>(64);
    ip.append(reinterpret_cast<const char*>(src.ip.bytes.data()), 16);
    ip.append(reinterpret_cast<const char*>(dst.ip.bytes.data()), 16);
  }
  return ip + transport;
}

std::string HpackEncode(nghttp2_hd_deflater* deflater,
                        const std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : headers) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                   value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  std::string out(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
  const ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(out.data()),
                                          out.size(), nva.data(), nva.size());
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

Endpoint MakeEndpoint(const char* ip, uint16_t port) {
  Endpoint e;
  e.ip = *partner::audit::IpAddress::Parse(ip);
  e.port = port;
  return e;
}

void PcapCrafter::AddTcp(const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack,
                         uint8_t flags, std::string_view payload) {
  const std::string ip =
      IpPacket(src, dst, TcpHeader(src, dst, seq, ack, flags) + std::string(payload));
  const uint16_t ethertype = src.ip.v6 ? 0x86DD : 0x0800;
  std::string frame;
  switch (linktype_) {
    case DLT_EN10MB:
      frame.append("\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
      Put16(frame, ethertype);
      break;
    case DLT_LINUX_SLL:
      Put16(frame, 4);    // sent by us
      Put16(frame, 772);  // ARPHRD_LOOPBACK
      Put16(frame, 6);
      frame.append(8, '\0');
      Put16(frame, ethertype);
      break;
    case DLT_LINUX_SLL2:
      Put16(frame, ethertype);
      Put16(frame, 0);
      Put32(frame, 1);  // interface index
      Put16(frame, 772);
      frame += static_cast<char>(4);
      frame += static_cast<char>(6);
      frame.append(8, '\0');
      break;
    default:  // DLT_RAW
      break;
  }
  frames_.push_back(frame + ip);
}

void PcapCrafter::AddUdp(const Endpoint& src, const Endpoint& dst, std::string_view payload) {
  std::string udp;
  Put16(udp, src.port);
  Put16(udp, dst.port);
  Put16(udp, static_cast<uint16_t>(8 + payload.size()));
  Put16(udp, 0);
  udp.append(payload);
  std::string ip = IpPacket(src, dst, udp);
  ip[9] = 17;  // protocol: UDP
  std::string frame("\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
  Put16(frame, 0x0800);
  frames_.push_back(frame + ip);
}

absl::Status PcapCrafter::Write(const std::string& path, size_t begin, size_t end) const {
  pcap_t* dead = pcap_open_dead(linktype_, 262144);
  if (!dead) return absl::InternalError("pcap_open_dead failed");
  pcap_dumper_t* dumper = pcap_dump_open(dead, path.c_str());
  if (!dumper) {
    const std::string why = pcap_geterr(dead);
    pcap_close(dead);
    return absl::InternalError(absl::StrCat(path, ": ", why));
  }
  int64_t usec = 1700000000LL * 1000000 + static_cast<int64_t>(begin) * 100;
  for (size_t i = begin; i < std::min(end, frames_.size()); ++i) {
    const std::string& f = frames_[i];
    pcap_pkthdr h{};
    usec += 100;
    h.ts.tv_sec = usec / 1000000;
    h.ts.tv_usec = usec % 1000000;
    h.caplen = h.len = static_cast<bpf_u_int32>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(dumper), &h, reinterpret_cast<const u_char*>(f.data()));
  }
  pcap_dump_close(dumper);
  pcap_close(dead);
  return absl::OkStatus();
}

std::string Http2Frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  f += static_cast<char>((payload.size() >> 16) & 0xFF);
  f += static_cast<char>((payload.size() >> 8) & 0xFF);
  f += static_cast<char>(payload.size() & 0xFF);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  Put32(f, stream);
  f.append(payload);
  return f;
}

std::string GrpcFramed(std::string_view message, uint8_t flag) {
  std::string out(1, static_cast<char>(flag));
  Put32(out, static_cast<uint32_t>(message.size()));
  out.append(message);
  return out;
}

// A header block as one HEADERS frame, or HEADERS + CONTINUATION frames of `fragment` bytes.
std::string HeaderFrames(uint8_t end_stream, uint32_t stream, const std::string& block,
                         size_t fragment) {
  if (fragment == 0 || block.size() <= fragment) {
    return Http2Frame(1, static_cast<uint8_t>(0x4 | end_stream), stream, block);
  }
  std::string out = Http2Frame(1, end_stream, stream, block.substr(0, fragment));
  for (size_t at = fragment; at < block.size(); at += fragment) {
    const bool last = at + fragment >= block.size();
    out += Http2Frame(9, last ? 0x4 : 0, stream, block.substr(at, fragment));
  }
  return out;
}

Http2Exchange MakeUnaryExchange(const std::string& path, const std::string& request,
                                const std::string& reply, const std::string& grpc_message,
                                size_t header_fragment, int grpc_status) {
  nghttp2_hd_deflater* client_hpack = nullptr;
  nghttp2_hd_deflater* server_hpack = nullptr;
  nghttp2_hd_deflate_new(&client_hpack, 4096);
  nghttp2_hd_deflate_new(&server_hpack, 4096);
  Http2Exchange x;
  x.client_bytes = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  x.client_bytes += Http2Frame(4, 0, 0, "");
  x.client_bytes += HeaderFrames(0, 1,
                                 HpackEncode(client_hpack, {{":method", "POST"},
                                                            {":scheme", "http"},
                                                            {":path", path},
                                                            {":authority", "127.0.0.1"},
                                                            {"content-type", "application/grpc"},
                                                            {"te", "trailers"}}),
                                 header_fragment);
  x.client_bytes += Http2Frame(0, 0x1, 1, GrpcFramed(request));
  x.client_bytes += Http2Frame(4, 0x1, 0, "");
  x.server_bytes = Http2Frame(4, 0, 0, "");
  x.server_bytes += Http2Frame(4, 0x1, 0, "");
  x.server_bytes += HeaderFrames(
      0, 1, HpackEncode(server_hpack, {{":status", "200"}, {"content-type", "application/grpc"}}),
      header_fragment);
  if (grpc_status == 0) x.server_bytes += Http2Frame(0, 0, 1, GrpcFramed(reply));
  std::vector<std::pair<std::string, std::string>> trailers = {
      {"grpc-status", std::to_string(grpc_status)}};
  if (!grpc_message.empty()) trailers.emplace_back("grpc-message", grpc_message);
  x.server_bytes += HeaderFrames(0x1, 1, HpackEncode(server_hpack, trailers), header_fragment);
  nghttp2_hd_deflate_del(client_hpack);
  nghttp2_hd_deflate_del(server_hpack);
  return x;
}

std::vector<TcpPiece> CutIntoPieces(bool from_client, std::string_view bytes, size_t max_piece) {
  std::vector<TcpPiece> pieces;
  for (size_t at = 0; at < bytes.size(); at += max_piece) {
    pieces.push_back({from_client, at, std::string(bytes.substr(at, max_piece))});
  }
  return pieces;
}

void AddConnection(PcapCrafter& pcap, const Endpoint& client, const Endpoint& server,
                   const std::vector<TcpPiece>& pieces, uint64_t client_total,
                   uint64_t server_total) {
  using partner::audit::kTcpAck;
  using partner::audit::kTcpFin;
  using partner::audit::kTcpSyn;
  pcap.AddTcp(client, server, kClientIsn, 0, kTcpSyn, "");
  pcap.AddTcp(server, client, kServerIsn, kClientIsn + 1, kTcpSyn | kTcpAck, "");
  pcap.AddTcp(client, server, kClientIsn + 1, kServerIsn + 1, kTcpAck, "");
  for (const TcpPiece& p : pieces) {
    if (p.from_client) {
      pcap.AddTcp(client, server, kClientIsn + 1 + static_cast<uint32_t>(p.offset), kServerIsn + 1,
                  kTcpAck, p.bytes);
    } else {
      pcap.AddTcp(server, client, kServerIsn + 1 + static_cast<uint32_t>(p.offset), kClientIsn + 1,
                  kTcpAck, p.bytes);
    }
  }
  const uint32_t client_end = kClientIsn + 1 + static_cast<uint32_t>(client_total);
  const uint32_t server_end = kServerIsn + 1 + static_cast<uint32_t>(server_total);
  pcap.AddTcp(client, server, client_end, server_end, kTcpFin | kTcpAck, "");
  pcap.AddTcp(server, client, server_end, client_end + 1, kTcpFin | kTcpAck, "");
  pcap.AddTcp(client, server, client_end + 1, server_end + 1, kTcpAck, "");
}

}  // namespace fedface::audit_test
