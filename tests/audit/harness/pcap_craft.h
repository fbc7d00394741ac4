// Test helpers that build captures byte by byte: TCP/IP frames of any supported link type written
// with libpcap's pcap_dump, and the HTTP/2 + gRPC bytes of one unary call (HPACK by nghttp2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "partner_node/audit/captured_packet.h"

namespace fedface::audit_test {

using partner::audit::Endpoint;

// "127.0.0.1" (or an IPv6 address) and a port; the address must parse.
Endpoint MakeEndpoint(const char* ip, uint16_t port);

// Frames of one link type (DLT_EN10MB, DLT_LINUX_SLL, DLT_LINUX_SLL2 or DLT_RAW), in order.
class PcapCrafter {
 public:
  explicit PcapCrafter(int linktype) : linktype_(linktype) {}

  // A TCP segment from src to dst (IPv4 or IPv6 by the endpoints' addresses).
  void AddTcp(const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
              std::string_view payload);
  // A UDP datagram from src to dst (IPv4 only).
  void AddUdp(const Endpoint& src, const Endpoint& dst, std::string_view payload);
  // Any frame bytes, as they are.
  void AddRaw(std::string frame) { frames_.push_back(std::move(frame)); }
  // Writes frames [begin, end) (default: all) with pcap_dump (snaplen 262144).
  absl::Status Write(const std::string& path, size_t begin = 0, size_t end = SIZE_MAX) const;
  size_t size() const { return frames_.size(); }

 private:
  int linktype_;
  std::vector<std::string> frames_;
};

// One unary gRPC call on HTTP/2 stream 1, as the two sides put it on the wire.
struct Http2Exchange {
  std::string client_bytes;  // preface, SETTINGS, HEADERS, DATA (END_STREAM), SETTINGS ACK
  std::string server_bytes;  // SETTINGS, SETTINGS ACK, HEADERS, DATA, trailers (END_STREAM)
};

// request/reply are serialized protobuf messages; path the gRPC method path. grpc_message, when
// given, goes into the trailers; header_fragment > 0 splits every header block into a HEADERS
// frame and CONTINUATION frames of at most that many bytes. A grpc_status other than 0 is a
// refusal: no reply message is sent, and grpc_message is sent as given (already percent-encoded).
Http2Exchange MakeUnaryExchange(const std::string& path, const std::string& request,
                                const std::string& reply, const std::string& grpc_message = "",
                                size_t header_fragment = 0, int grpc_status = 0);

// The HTTP/2 frame header + payload.
std::string Http2Frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload);
// The 5-byte gRPC prefix (uncompressed) + message.
std::string GrpcFramed(std::string_view message, uint8_t flag = 0);

// A TCP connection written segment by segment: handshake, data cut into pieces, FINs.
struct TcpPiece {
  bool from_client;
  uint64_t offset;  // in the sender's stream
  std::string bytes;
};
// Cuts `bytes` into consecutive pieces of at most `max_piece` bytes.
std::vector<TcpPiece> CutIntoPieces(bool from_client, std::string_view bytes, size_t max_piece);
// Writes SYN, SYN-ACK, ACK, then the pieces in the given order, then FIN from both sides.
void AddConnection(PcapCrafter& pcap, const Endpoint& client, const Endpoint& server,
                   const std::vector<TcpPiece>& pieces, uint64_t client_total,
                   uint64_t server_total);

}  // namespace fedface::audit_test
