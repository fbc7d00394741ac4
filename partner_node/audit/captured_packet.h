// Reading packet captures for the traffic audit: pcap files (libpcap) and the decoding of one
// captured frame down to its TCP segment. Link types: Ethernet (with 802.1Q/802.1ad tags), Linux
// cooked v1 and v2 (`tcpdump -i any`), raw IP, BSD loopback (DLT_NULL / DLT_LOOP). Network: IPv4
// and IPv6 (extension headers skipped). Transport: TCP; anything else is reported as such.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct pcap;

namespace fedface::partner::audit {

// An IPv4 or IPv6 address; IPv4 is kept in the first 4 bytes.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool v6 = false;

  // Parses "127.0.0.1" or "::1". Fails naming the text when it is neither.
  static absl::StatusOr<IpAddress> Parse(std::string_view text);
  std::string ToString() const;
  auto operator<=>(const IpAddress&) const = default;
};

struct Endpoint {
  IpAddress ip;
  uint16_t port = 0;

  // "127.0.0.1:50051" or "[::1]:50051".
  std::string ToString() const;
  auto operator<=>(const Endpoint&) const = default;
};

// Where a captured frame sits: which capture file (index into the audited list) and its 1-based
// frame number in that file (the number Wireshark shows).
struct PacketPosition {
  int file_index = -1;
  uint64_t packet_number = 0;
  int64_t time_usec = 0;  // capture timestamp, microseconds since the epoch
};

enum class PacketKind {
  kTcp,        // tcp and the fields below are set
  kOtherIp,    // IP, but not TCP (UDP, ICMP, ...): src/dst/ip_protocol/payload set, ports for UDP
  kFragment,   // an IP fragment (not reassembled): src/dst set
  kNotIp,      // ARP, LLDP, ...: nothing is set
  kMalformed,  // headers cut short or inconsistent: problem says why
};

constexpr uint8_t kTcpFin = 0x01;
constexpr uint8_t kTcpSyn = 0x02;
constexpr uint8_t kTcpRst = 0x04;
constexpr uint8_t kTcpAck = 0x10;

// One captured frame, decoded. Views point into the frame buffer given to DecodeFrame.
struct DecodedFrame {
  PacketKind kind = PacketKind::kNotIp;
  Endpoint src;
  Endpoint dst;
  uint8_t ip_protocol = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t tcp_flags = 0;
  // Transport payload as captured. When the capture cut the frame short (snaplen), this is the
  // captured part only and missing_payload_bytes says how much of the payload is not there.
  std::string_view payload;
  uint32_t missing_payload_bytes = 0;
  std::string problem;  // kMalformed only
};

// Decodes one frame of pcap link type `linktype` (a DLT_* value). caplen is what the capture
// holds, wirelen what was on the wire. Never fails: odd frames come back as kMalformed/kNotIp.
DecodedFrame DecodeFrame(int linktype, const uint8_t* data, uint32_t caplen, uint32_t wirelen);

// True when DecodeFrame understands the link type.
bool IsSupportedLinkType(int linktype);

// A pcap or pcapng file read frame by frame. Not thread-safe.
class CaptureReader {
 public:
  // Opens the file. Fails naming it when it is missing, not a capture, or of a link type
  // DecodeFrame does not support.
  static absl::StatusOr<std::unique_ptr<CaptureReader>> Open(const std::string& path);
  ~CaptureReader();
  CaptureReader(const CaptureReader&) = delete;
  CaptureReader& operator=(const CaptureReader&) = delete;

  struct Frame {
    const uint8_t* data = nullptr;  // valid until the next call to Next
    uint32_t caplen = 0;
    uint32_t wirelen = 0;
    uint64_t number = 0;  // 1-based
    int64_t time_usec = 0;
  };

  // Reads the next frame. Returns false at the clean end of the file. Fails naming the file and
  // frame number when the file is truncated or corrupt (what was read before stays valid).
  absl::StatusOr<bool> Next(Frame* frame);

  int linktype() const { return linktype_; }
  const std::string& path() const { return path_; }

 private:
  CaptureReader(std::string path, pcap* handle, int linktype)
      : path_(std::move(path)), handle_(handle), linktype_(linktype) {}

  const std::string path_;
  pcap* const handle_;
  const int linktype_;
  uint64_t count_ = 0;
};

}  // namespace fedface::partner::audit
