// Decoding one HTTP/2 connection (plaintext, prior knowledge, as gRPC uses it) into gRPC
// messages, from the two reassembled TCP byte streams.
//
// Per side: the client preface, then frames (DATA, HEADERS + CONTINUATION, SETTINGS, PING,
// GOAWAY, RST_STREAM, WINDOW_UPDATE, PRIORITY; PUSH_PROMISE and unknown frame types are
// problems). Header blocks are decoded with nghttp2's HPACK inflater, one per side, whose table
// size follows the peer's SETTINGS_HEADER_TABLE_SIZE once acknowledged. DATA payloads of each
// stream and side are split into gRPC length-prefixed messages.
//
// Anything the decoder cannot account for is reported as a WireProblem with the place it
// happened; after a problem that loses framing (a gap, a malformed frame, an HPACK failure) the
// side is no longer decoded, and that is said once. The decoder never throws and bounds its
// memory (kMaxMessageBytes per message, kMaxHeaderBlockBytes per header block).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "partner_node/audit/captured_packet.h"

struct nghttp2_hd_inflater;

namespace fedface::partner::audit {

// Who sent the bytes: the endpoint that opened the TCP connection (client) or the other one.
enum class Side { kClient = 0, kServer = 1 };

struct HeaderField {
  std::string name;
  std::string value;
};

struct GrpcMessage {
  Side side = Side::kClient;
  uint32_t stream_id = 0;
  int index = 0;              // 0-based, among this side's messages on this stream
  std::string path;           // the stream's :path; "" when the request headers were not decoded
  bool compressed = false;    // the length prefix's compressed flag was set
  std::string_view bytes;     // the message without the 5-byte prefix; valid during OnMessage only
  uint64_t start_offset = 0;  // the prefix's first byte, in the side's TCP stream
  uint64_t end_offset = 0;    // one past the message's last byte, in the side's TCP stream
  // Where each DATA frame's part of the message begins: (offset in `bytes`, offset in the side's
  // TCP stream). One entry when a single frame carried the whole message. Valid during OnMessage.
  std::vector<std::pair<uint32_t, uint64_t>> chunks;
  PacketPosition completed_at;  // the frame that carried the last byte
};

enum class WireProblemKind {
  kNotHttp2,     // no client preface / no SETTINGS first; TLS is recognised and named
  kProtocol,     // a frame that breaks HTTP/2 framing rules
  kHeaders,      // HPACK failure or header block too large
  kGrpcFraming,  // bad compressed flag, oversize message, DATA on a stream without headers
  kIncomplete,   // a message, frame or header block cut off by a gap, a reset or the end
  kUnaudited,    // content the audit cannot inspect (PUSH_PROMISE, unknown frame types)
};

const char* WireProblemKindName(WireProblemKind kind);

struct WireProblem {
  WireProblemKind kind = WireProblemKind::kProtocol;
  Side side = Side::kClient;
  uint32_t stream_id = 0;  // 0 when the problem concerns the connection
  uint64_t offset = 0;     // in the side's TCP stream
  std::string detail;
};

class GrpcWireEvents {
 public:
  virtual ~GrpcWireEvents() = default;
  // A decoded header block (request or response headers, or trailers) that the side's frames
  // [offset, end_offset) carried.
  virtual void OnHeaders(Side side, uint32_t stream_id, uint64_t offset, uint64_t end_offset,
                         const std::vector<HeaderField>& fields) = 0;
  virtual void OnMessage(const GrpcMessage& message) = 0;
  virtual void OnProblem(const WireProblem& problem) = 0;
};

// What one HTTP/2 stream carried, for the report.
struct GrpcStreamSummary {
  uint32_t id = 0;
  std::string path;
  std::string content_type;
  std::string grpc_encoding[2];  // per side
  std::optional<int> grpc_status;
  std::string grpc_message;
  int messages[2] = {0, 0};  // per side
  uint64_t message_bytes[2] = {0, 0};
  bool ended[2] = {false, false};
  bool reset = false;
};

class GrpcWireDecoder {
 public:
  static constexpr uint32_t kMaxMessageBytes = 64u << 20;
  static constexpr size_t kMaxHeaderBlockBytes = 1u << 20;

  // events must outlive the decoder. Not thread-safe.
  explicit GrpcWireDecoder(GrpcWireEvents* events);
  ~GrpcWireDecoder();
  GrpcWireDecoder(const GrpcWireDecoder&) = delete;
  GrpcWireDecoder& operator=(const GrpcWireDecoder&) = delete;

  // In-order bytes of one side at `offset` (as a TcpReassembler delivers them).
  void Feed(Side side, uint64_t offset, std::string_view bytes, const PacketPosition& from);
  // Bytes of one side are missing from `offset` on (length kUnknownLength: the stream's start).
  // Decoding of that side stops.
  void OnGap(Side side, uint64_t offset, uint64_t length);
  // The capture ended: reports what was left half-done. Idempotent.
  void Finish();

  // Every stream seen, by id.
  const std::map<uint32_t, GrpcStreamSummary>& streams() const { return summaries_; }
  uint64_t frames(Side side) const { return sides_[static_cast<int>(side)].frames; }

 private:
  struct MessageAssembler {
    unsigned char prefix[5] = {};
    int prefix_have = 0;
    uint32_t need = 0;
    std::string body;
    std::vector<std::pair<uint32_t, uint64_t>> chunks;
    uint64_t start = 0;
    int count = 0;
    bool broken = false;
    bool partial() const { return !broken && (prefix_have > 0); }
  };
  struct StreamState {
    int header_blocks[2] = {0, 0};
    bool headerless_reported = false;
    MessageAssembler assembler[2];
  };
  struct SideState {
    bool broken = false;
    bool preface_done = false;
    bool first_frame_seen = false;
    std::string buffer;  // bytes of an incomplete frame (or preface)
    uint64_t buffer_offset = 0;
    nghttp2_hd_inflater* inflater = nullptr;
    bool in_header_block = false;
    uint32_t block_stream = 0;
    uint8_t block_type = 0;
    bool block_end_stream = false;
    uint64_t block_offset = 0;
    uint64_t block_end = 0;
    std::string block;
    std::deque<int64_t> unacked_table_sizes;  // per SETTINGS sent: HEADER_TABLE_SIZE or -1
    uint64_t frames = 0;
    PacketPosition last_from;
  };

  void Problem(WireProblemKind kind, Side side, uint32_t stream, uint64_t offset,
               std::string detail);
  void Break(WireProblemKind kind, Side side, uint32_t stream, uint64_t offset, std::string detail);
  // Returns false when the side broke.
  bool HandleFrame(Side side, uint64_t offset, uint8_t type, uint8_t flags, uint32_t stream,
                   std::string_view payload);
  bool HandleData(Side side, uint64_t offset, uint8_t flags, uint32_t stream,
                  std::string_view payload);
  bool HandleHeaderBlock(Side side);
  void HandleSettings(Side side, uint64_t offset, uint8_t flags, std::string_view payload);
  void AddMessageBytes(Side side, uint32_t stream, uint64_t offset, std::string_view bytes);
  void EndSide(Side side, uint32_t stream, uint64_t offset, const char* why);

  GrpcWireEvents* const events_;
  SideState sides_[2];
  std::map<uint32_t, StreamState> streams_;
  std::map<uint32_t, GrpcStreamSummary> summaries_;
  bool finished_ = false;
};

}  // namespace fedface::partner::audit
