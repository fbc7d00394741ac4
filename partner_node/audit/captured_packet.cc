#include "partner_node/audit/captured_packet.h"

#include <arpa/inet.h>
#include <pcap/pcap.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace fedface::partner::audit {
namespace {

constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint16_t kEtherIpv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88A8;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

DecodedFrame Malformed(std::string why) {
  DecodedFrame f;
  f.kind = PacketKind::kMalformed;
  f.problem = std::move(why);
  return f;
}

// Decodes the transport header at `p` (caplen bytes captured of the `wire_len` the IP header
// declared for the transport part).
void DecodeTransport(const uint8_t* p, uint32_t caplen, uint32_t wire_len, DecodedFrame* f) {
  if (f->ip_protocol != kProtoTcp) {
    f->kind = PacketKind::kOtherIp;
    uint32_t header = 0;
    if (f->ip_protocol == kProtoUdp && caplen >= 8) {
      f->src.port = Be16(p);
      f->dst.port = Be16(p + 2);
      header = 8;
    }
    const uint32_t have = std::min(caplen, wire_len);
    if (have >= header)
      f->payload = std::string_view(reinterpret_cast<const char*>(p + header), have - header);
    f->missing_payload_bytes = wire_len > caplen ? wire_len - caplen : 0;
    return;
  }
  if (caplen < 20 || wire_len < 20) {
    *f = Malformed("TCP header cut short");
    return;
  }
  const uint32_t data_offset = static_cast<uint32_t>(p[12] >> 4) * 4;
  if (data_offset < 20 || data_offset > wire_len) {
    *f = Malformed(absl::StrCat("TCP data offset ", data_offset, " is invalid"));
    return;
  }
  if (caplen < data_offset) {
    *f = Malformed("TCP options cut short by the capture length");
    return;
  }
  f->kind = PacketKind::kTcp;
  f->src.port = Be16(p);
  f->dst.port = Be16(p + 2);
  f->seq = Be32(p + 4);
  f->ack = Be32(p + 8);
  f->tcp_flags = p[13];
  const uint32_t have = std::min(caplen, wire_len);
  f->payload = std::string_view(reinterpret_cast<const char*>(p + data_offset), have - data_offset);
  f->missing_payload_bytes = wire_len > caplen ? wire_len - caplen : 0;
}

DecodedFrame DecodeIpv4(const uint8_t* p, uint32_t caplen) {
  if (caplen < 20) return Malformed("IPv4 header cut short");
  const uint32_t ihl = static_cast<uint32_t>(p[0] & 0x0F) * 4;
  const uint32_t total = Be16(p + 2);
  if (ihl < 20 || total < ihl) return Malformed("IPv4 header length is invalid");
  if (caplen < ihl) return Malformed("IPv4 options cut short");
  DecodedFrame f;
  f.src.ip.v6 = f.dst.ip.v6 = false;
  std::memcpy(f.src.ip.bytes.data(), p + 12, 4);
  std::memcpy(f.dst.ip.bytes.data(), p + 16, 4);
  f.ip_protocol = p[9];
  const uint16_t frag = Be16(p + 6);
  if ((frag & 0x2000) || (frag & 0x1FFF)) {  // more fragments, or a non-zero offset
    f.kind = PacketKind::kFragment;
    return f;
  }
  DecodeTransport(p + ihl, caplen - ihl, total - ihl, &f);
  return f;
}

DecodedFrame DecodeIpv6(const uint8_t* p, uint32_t caplen) {
  if (caplen < 40) return Malformed("IPv6 header cut short");
  DecodedFrame f;
  f.src.ip.v6 = f.dst.ip.v6 = true;
  std::memcpy(f.src.ip.bytes.data(), p + 8, 16);
  std::memcpy(f.dst.ip.bytes.data(), p + 24, 16);
  uint32_t remaining_wire = Be16(p + 4);  // payload length (jumbograms are not supported)
  uint8_t next = p[6];
  uint32_t off = 40;
  // Walk the extension headers: hop-by-hop 0, routing 43, fragment 44, destination options 60.
  for (int guard = 0; guard < 16; ++guard) {
    if (next == 0 || next == 43 || next == 60) {
      if (caplen < off + 2) return Malformed("IPv6 extension header cut short");
      const uint32_t len = (uint32_t{p[off + 1]} + 1) * 8;
      if (len > remaining_wire) return Malformed("IPv6 extension header longer than the packet");
      next = p[off];
      off += len;
      remaining_wire -= len;
      continue;
    }
    if (next == 44) {
      if (caplen < off + 8) return Malformed("IPv6 fragment header cut short");
      const uint16_t frag = Be16(p + off + 2);
      if ((frag & 0xFFF8) || (frag & 1)) {
        f.ip_protocol = p[off];
        f.kind = PacketKind::kFragment;
        return f;
      }
      next = p[off];
      off += 8;
      remaining_wire -= std::min<uint32_t>(8, remaining_wire);
      continue;
    }
    break;
  }
  if (caplen < off) return Malformed("IPv6 headers cut short");
  f.ip_protocol = next;
  DecodeTransport(p + off, caplen - off, remaining_wire, &f);
  return f;
}

DecodedFrame DecodeByEthertype(uint16_t type, const uint8_t* p, uint32_t caplen) {
  if (type == kEtherIpv4) return DecodeIpv4(p, caplen);
  if (type == kEtherIpv6) return DecodeIpv6(p, caplen);
  return DecodedFrame{};
}

DecodedFrame DecodeByVersion(const uint8_t* p, uint32_t caplen) {
  if (caplen < 1) return Malformed("empty frame");
  if ((p[0] >> 4) == 4) return DecodeIpv4(p, caplen);
  if ((p[0] >> 4) == 6) return DecodeIpv6(p, caplen);
  return Malformed(absl::StrCat("IP version ", p[0] >> 4, " is not 4 or 6"));
}

}  // namespace

absl::StatusOr<IpAddress> IpAddress::Parse(std::string_view text) {
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.v6 = true;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return absl::InvalidArgumentError(absl::StrCat("'", s, "' is not an IPv4 or IPv6 address"));
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string Endpoint::ToString() const {
  return ip.v6 ? absl::StrCat("[", ip.ToString(), "]:", port)
               : absl::StrCat(ip.ToString(), ":", port);
}

bool IsSupportedLinkType(int linktype) {
  switch (linktype) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
    case DLT_NULL:
    case DLT_LOOP:
      return true;
    default:
      return false;
  }
}

DecodedFrame DecodeFrame(int linktype, const uint8_t* data, uint32_t caplen, uint32_t wirelen) {
  (void)wirelen;  // IP's own length fields say how much was on the wire
  switch (linktype) {
    case DLT_EN10MB: {
      if (caplen < 14) return Malformed("Ethernet header cut short");
      uint32_t off = 12;
      uint16_t type = Be16(data + off);
      while ((type == kEtherVlan || type == kEtherQinQ) && caplen >= off + 6) {
        off += 4;
        type = Be16(data + off);
      }
      off += 2;
      return DecodeByEthertype(type, data + off, caplen - off);
    }
    case DLT_LINUX_SLL:
      if (caplen < 16) return Malformed("Linux cooked header cut short");
      return DecodeByEthertype(Be16(data + 14), data + 16, caplen - 16);
    case DLT_LINUX_SLL2:
      if (caplen < 20) return Malformed("Linux cooked v2 header cut short");
      return DecodeByEthertype(Be16(data), data + 20, caplen - 20);
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      return DecodeByVersion(data, caplen);
    case DLT_NULL:
    case DLT_LOOP:
      if (caplen < 4) return Malformed("loopback header cut short");
      return DecodeByVersion(data + 4, caplen - 4);
    default:
      return Malformed(absl::StrCat("link type ", linktype, " is not supported"));
  }
}

absl::StatusOr<std::unique_ptr<CaptureReader>> CaptureReader::Open(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* handle =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO, err);
  if (!handle) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read capture: ", err));
  }
  const int linktype = pcap_datalink(handle);
  if (!IsSupportedLinkType(linktype)) {
    const char* name = pcap_datalink_val_to_name(linktype);
    pcap_close(handle);
    return absl::InvalidArgumentError(absl::StrCat(path, ": link type ", name ? name : "?", " (",
                                                   linktype, ") is not supported"));
  }
  return std::unique_ptr<CaptureReader>(new CaptureReader(path, handle, linktype));
}

CaptureReader::~CaptureReader() { pcap_close(handle_); }

absl::StatusOr<bool> CaptureReader::Next(Frame* frame) {
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  const int rc = pcap_next_ex(handle_, &header, &data);
  if (rc == PCAP_ERROR_BREAK) return false;
  if (rc != 1) {
    return absl::DataLossError(
        absl::StrCat(path_, ": unreadable after frame ", count_, ": ", pcap_geterr(handle_)));
  }
  ++count_;
  frame->data = data;
  frame->caplen = header->caplen;
  frame->wirelen = header->len;
  frame->number = count_;
  frame->time_usec = int64_t{header->ts.tv_sec} * 1000000 + header->ts.tv_usec;
  return true;
}

}  // namespace fedface::partner::audit
