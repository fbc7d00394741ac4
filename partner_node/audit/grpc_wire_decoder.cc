#include "partner_node/audit/grpc_wire_decoder.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "partner_node/audit/tcp_reassembler.h"

namespace fedface::partner::audit {
namespace {

constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kFrameHeaderBytes = 9;

enum FrameType : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRstStream = 3,
  kSettings = 4,
  kPushPromise = 5,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr uint8_t kFlagPadded = 0x8;
constexpr uint8_t kFlagPriority = 0x20;

uint32_t Be32(const unsigned char* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

int Index(Side side) { return static_cast<int>(side); }
Side Other(Side side) { return side == Side::kClient ? Side::kServer : Side::kClient; }
const char* SideName(Side side) { return side == Side::kClient ? "client" : "server"; }

// Says what non-HTTP/2 bytes look like, so that a TLS capture is named as such.
std::string DescribeForeignBytes(std::string_view bytes) {
  if (bytes.size() >= 3 && bytes[0] == 0x16 && bytes[1] == 0x03) {
    return "TLS handshake: encrypted traffic cannot be audited (capture the plaintext link)";
  }
  std::string shown;
  for (char c : bytes.substr(0, 16)) {
    shown += (c >= 0x20 && c < 0x7F) ? c : '.';
  }
  return absl::StrCat("bytes '", shown, "' are not HTTP/2");
}

// Removes HTTP/2 padding: a pad-length byte first, that many bytes at the end.
bool StripPadding(std::string_view* payload, uint64_t* data_offset) {
  if (payload->empty()) return false;
  const size_t pad = static_cast<unsigned char>((*payload)[0]);
  payload->remove_prefix(1);
  ++*data_offset;
  if (pad > payload->size()) return false;
  payload->remove_suffix(pad);
  return true;
}

}  // namespace

const char* WireProblemKindName(WireProblemKind kind) {
  switch (kind) {
    case WireProblemKind::kNotHttp2:
      return "not-http2";
    case WireProblemKind::kProtocol:
      return "http2-protocol";
    case WireProblemKind::kHeaders:
      return "http2-headers";
    case WireProblemKind::kGrpcFraming:
      return "grpc-framing";
    case WireProblemKind::kIncomplete:
      return "incomplete";
    case WireProblemKind::kUnaudited:
      return "unaudited-content";
  }
  return "?";
}

GrpcWireDecoder::GrpcWireDecoder(GrpcWireEvents* events) : events_(events) {
  for (SideState& s : sides_) {
    if (nghttp2_hd_inflate_new(&s.inflater) != 0) s.inflater = nullptr;
  }
}

GrpcWireDecoder::~GrpcWireDecoder() {
  for (SideState& s : sides_) {
    if (s.inflater) nghttp2_hd_inflate_del(s.inflater);
  }
}

void GrpcWireDecoder::Problem(WireProblemKind kind, Side side, uint32_t stream, uint64_t offset,
                              std::string detail) {
  events_->OnProblem({kind, side, stream, offset, std::move(detail)});
}

void GrpcWireDecoder::Break(WireProblemKind kind, Side side, uint32_t stream, uint64_t offset,
                            std::string detail) {
  SideState& s = sides_[Index(side)];
  if (s.broken) return;
  s.broken = true;
  s.buffer.clear();
  s.block.clear();
  s.in_header_block = false;
  for (auto& [id, st] : streams_) st.assembler[Index(side)].broken = true;
  Problem(kind, side, stream, offset,
          absl::StrCat(detail, "; the rest of the ", SideName(side), "'s bytes are not decoded"));
}

void GrpcWireDecoder::OnGap(Side side, uint64_t offset, uint64_t length) {
  if (finished_) return;
  Break(WireProblemKind::kIncomplete, side, 0, offset,
        length == kUnknownLength
            ? std::string("the start of the TCP stream was not captured")
            : absl::StrCat(length, " bytes of the TCP stream are missing from the capture"));
}

void GrpcWireDecoder::Feed(Side side, uint64_t offset, std::string_view bytes,
                           const PacketPosition& from) {
  SideState& s = sides_[Index(side)];
  if (s.broken || finished_ || bytes.empty()) return;
  s.last_from = from;
  if (s.buffer.empty()) s.buffer_offset = offset;
  s.buffer.append(bytes);
  size_t pos = 0;
  if (side == Side::kClient && !s.preface_done) {
    const size_t n = std::min(s.buffer.size(), kClientPreface.size());
    if (s.buffer.compare(0, n, kClientPreface.substr(0, n)) != 0) {
      Break(WireProblemKind::kNotHttp2, side, 0, s.buffer_offset,
            absl::StrCat("no HTTP/2 client preface: ", DescribeForeignBytes(s.buffer)));
      return;
    }
    if (n < kClientPreface.size()) return;
    s.preface_done = true;
    pos = kClientPreface.size();
  }
  const auto* b = reinterpret_cast<const unsigned char*>(s.buffer.data());
  while (s.buffer.size() - pos >= kFrameHeaderBytes) {
    const uint32_t length = uint32_t{b[pos]} << 16 | uint32_t{b[pos + 1]} << 8 | b[pos + 2];
    const uint8_t type = b[pos + 3];
    const uint8_t flags = b[pos + 4];
    const uint32_t stream = Be32(b + pos + 5) & 0x7FFFFFFF;
    const uint64_t frame_offset = s.buffer_offset + pos;
    if (!s.first_frame_seen) {
      s.first_frame_seen = true;
      if (type != kSettings) {
        Break(WireProblemKind::kNotHttp2, side, 0, frame_offset,
              side == Side::kServer ? absl::StrCat("the server's first frame is not SETTINGS: ",
                                                   DescribeForeignBytes(s.buffer.substr(pos)))
                                    : absl::StrCat("the first frame after the preface is type ",
                                                   type, ", not SETTINGS"));
        return;
      }
    }
    if (s.buffer.size() - pos < kFrameHeaderBytes + length) break;
    ++s.frames;
    const std::string_view payload(s.buffer.data() + pos + kFrameHeaderBytes, length);
    if (!HandleFrame(side, frame_offset, type, flags, stream, payload)) return;
    pos += kFrameHeaderBytes + length;
  }
  s.buffer.erase(0, pos);
  s.buffer_offset += pos;
}

bool GrpcWireDecoder::HandleFrame(Side side, uint64_t offset, uint8_t type, uint8_t flags,
                                  uint32_t stream, std::string_view payload) {
  SideState& s = sides_[Index(side)];
  if (s.in_header_block && type != kContinuation) {
    Break(WireProblemKind::kProtocol, side, stream, offset,
          absl::StrCat("frame type ", type, " inside the header block of stream ", s.block_stream,
                       " (CONTINUATION expected)"));
    return false;
  }
  switch (type) {
    case kData:
      if (stream == 0) {
        Break(WireProblemKind::kProtocol, side, 0, offset, "DATA frame on stream 0");
        return false;
      }
      return HandleData(side, offset, flags, stream, payload);
    case kHeaders:
    case kPushPromise: {
      if (stream == 0) {
        Break(WireProblemKind::kProtocol, side, 0, offset, "header frame on stream 0");
        return false;
      }
      uint64_t data_offset = offset + kFrameHeaderBytes;
      std::string_view p = payload;
      bool ok = !(flags & kFlagPadded) || StripPadding(&p, &data_offset);
      const size_t skip = type == kPushPromise ? 4 : (flags & kFlagPriority) ? 5 : 0;
      if (!ok || p.size() < skip) {
        Break(WireProblemKind::kProtocol, side, stream, offset, "malformed header frame");
        return false;
      }
      p.remove_prefix(skip);
      if (type == kPushPromise) {
        Problem(WireProblemKind::kUnaudited, side, stream, offset,
                "PUSH_PROMISE frame: gRPC never pushes; the promised stream is not audited");
      }
      s.in_header_block = true;
      s.block_stream = stream;
      s.block_type = type;
      s.block_end_stream = type == kHeaders && (flags & kFlagEndStream);
      s.block_offset = offset;
      s.block_end = offset + kFrameHeaderBytes + payload.size();
      s.block.assign(p);
      if (flags & kFlagEndHeaders) return HandleHeaderBlock(side);
      return true;
    }
    case kContinuation:
      if (!s.in_header_block || stream != s.block_stream) {
        Break(WireProblemKind::kProtocol, side, stream, offset,
              "CONTINUATION frame without a header block in progress on its stream");
        return false;
      }
      s.block.append(payload);
      s.block_end = offset + kFrameHeaderBytes + payload.size();
      if (s.block.size() > kMaxHeaderBlockBytes) {
        Break(WireProblemKind::kHeaders, side, stream, offset,
              absl::StrCat("header block larger than ", kMaxHeaderBlockBytes, " bytes"));
        return false;
      }
      if (flags & kFlagEndHeaders) return HandleHeaderBlock(side);
      return true;
    case kSettings:
      if (stream != 0 || (flags & kFlagAck ? payload.size() != 0 : payload.size() % 6 != 0)) {
        Break(WireProblemKind::kProtocol, side, stream, offset, "malformed SETTINGS frame");
        return false;
      }
      HandleSettings(side, offset, flags, payload);
      return true;
    case kRstStream: {
      if (stream == 0 || payload.size() != 4) {
        Break(WireProblemKind::kProtocol, side, stream, offset, "malformed RST_STREAM frame");
        return false;
      }
      const uint32_t code = Be32(reinterpret_cast<const unsigned char*>(payload.data()));
      summaries_[stream].id = stream;
      summaries_[stream].reset = true;
      for (Side each : {Side::kClient, Side::kServer}) {
        MessageAssembler& a = streams_[stream].assembler[Index(each)];
        if (a.partial()) {
          Problem(WireProblemKind::kIncomplete, each, stream, offset,
                  absl::StrCat("stream reset (error code ", code, ") by the ", SideName(side),
                               " inside a gRPC message of ", a.need, " bytes"));
        }
        a.broken = true;
      }
      return true;
    }
    case kPriority:
    case kPing:
    case kGoaway:
    case kWindowUpdate:
      return true;  // flow control and liveness; their few bytes are scanned raw like all bytes
    default:
      Problem(
          WireProblemKind::kUnaudited, side, stream, offset,
          absl::StrCat("unknown HTTP/2 frame type ", type, " carrying ", payload.size(), " bytes"));
      return true;
  }
}

bool GrpcWireDecoder::HandleData(Side side, uint64_t offset, uint8_t flags, uint32_t stream,
                                 std::string_view payload) {
  uint64_t data_offset = offset + kFrameHeaderBytes;
  if ((flags & kFlagPadded) && !StripPadding(&payload, &data_offset)) {
    Break(WireProblemKind::kProtocol, side, stream, offset, "malformed DATA padding");
    return false;
  }
  StreamState& st = streams_[stream];
  GrpcStreamSummary& summary = summaries_[stream];
  summary.id = stream;
  if (st.header_blocks[Index(Side::kClient)] == 0 && !st.headerless_reported) {
    st.headerless_reported = true;
    Problem(WireProblemKind::kGrpcFraming, side, stream, offset,
            "DATA on a stream whose request headers were not seen");
  }
  AddMessageBytes(side, stream, data_offset, payload);
  if (flags & kFlagEndStream) EndSide(side, stream, offset, "END_STREAM");
  return true;
}

void GrpcWireDecoder::AddMessageBytes(Side side, uint32_t stream, uint64_t offset,
                                      std::string_view bytes) {
  MessageAssembler& a = streams_[stream].assembler[Index(side)];
  GrpcStreamSummary& summary = summaries_[stream];
  while (!bytes.empty() && !a.broken) {
    if (a.prefix_have < 5) {
      if (a.prefix_have == 0) a.start = offset;
      const size_t take = std::min<size_t>(5 - a.prefix_have, bytes.size());
      std::memcpy(a.prefix + a.prefix_have, bytes.data(), take);
      a.prefix_have += static_cast<int>(take);
      offset += take;
      bytes.remove_prefix(take);
      if (a.prefix_have < 5) return;
      a.need = Be32(a.prefix + 1);
      if (a.prefix[0] > 1) {
        Problem(WireProblemKind::kGrpcFraming, side, stream, a.start,
                absl::StrCat("gRPC message flag byte ", int{a.prefix[0]},
                             " is neither 0 nor 1; the stream's messages are not decoded"));
        a.broken = true;
        return;
      }
      if (a.need > kMaxMessageBytes) {
        Problem(WireProblemKind::kGrpcFraming, side, stream, a.start,
                absl::StrCat("gRPC message of ", a.need, " bytes exceeds the audit limit of ",
                             kMaxMessageBytes, "; the stream's messages are not decoded"));
        a.broken = true;
        return;
      }
      a.body.clear();
      a.chunks.clear();
      if (a.body.capacity() < a.need) a.body.reserve(std::min<uint32_t>(a.need, 1u << 20));
    } else {
      const size_t take = std::min<size_t>(a.need - a.body.size(), bytes.size());
      a.chunks.emplace_back(static_cast<uint32_t>(a.body.size()), offset);
      a.body.append(bytes.data(), take);
      offset += take;
      bytes.remove_prefix(take);
    }
    if (a.prefix_have == 5 && a.body.size() == a.need) {
      GrpcMessage m;
      m.side = side;
      m.stream_id = stream;
      m.index = a.count++;
      m.path = summary.path;
      m.compressed = a.prefix[0] == 1;
      m.bytes = a.body;
      m.chunks = std::move(a.chunks);
      m.start_offset = a.start;
      m.end_offset = offset;
      m.completed_at = sides_[Index(side)].last_from;
      a.prefix_have = 0;
      ++summary.messages[Index(side)];
      summary.message_bytes[Index(side)] += m.bytes.size();
      events_->OnMessage(m);
      // The body's buffer is kept for the next message: no fresh pages per message.
      a.body.clear();
      a.chunks.clear();
    }
  }
}

void GrpcWireDecoder::EndSide(Side side, uint32_t stream, uint64_t offset, const char* why) {
  summaries_[stream].id = stream;
  summaries_[stream].ended[Index(side)] = true;
  MessageAssembler& a = streams_[stream].assembler[Index(side)];
  if (a.partial()) {
    Problem(WireProblemKind::kIncomplete, side, stream, offset,
            absl::StrCat("stream ended (", why, ") inside a gRPC message: ", a.body.size(), " of ",
                         a.need, " bytes"));
  }
  a.broken = true;  // nothing may follow the end of a side
}

bool GrpcWireDecoder::HandleHeaderBlock(Side side) {
  SideState& s = sides_[Index(side)];
  s.in_header_block = false;
  const uint32_t stream = s.block_stream;
  const uint64_t offset = s.block_offset;
  if (!s.inflater) {
    Break(WireProblemKind::kHeaders, side, stream, offset, "no HPACK inflater (out of memory)");
    return false;
  }
  std::vector<HeaderField> fields;
  size_t total = 0;
  const auto* in = reinterpret_cast<const uint8_t*>(s.block.data());
  size_t inlen = s.block.size();
  for (;;) {
    nghttp2_nv nv;
    int inflate_flags = 0;
    const ssize_t rv = nghttp2_hd_inflate_hd2(s.inflater, &nv, &inflate_flags, in, inlen, 1);
    if (rv < 0) {
      Break(WireProblemKind::kHeaders, side, stream, offset,
            absl::StrCat("HPACK decoding failed: ", nghttp2_strerror(static_cast<int>(rv))));
      return false;
    }
    in += rv;
    inlen -= static_cast<size_t>(rv);
    if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT) {
      total += nv.namelen + nv.valuelen + 32;
      if (total > kMaxHeaderBlockBytes) {
        Break(WireProblemKind::kHeaders, side, stream, offset,
              absl::StrCat("decoded header list larger than ", kMaxHeaderBlockBytes, " bytes"));
        return false;
      }
      fields.push_back({std::string(reinterpret_cast<const char*>(nv.name), nv.namelen),
                        std::string(reinterpret_cast<const char*>(nv.value), nv.valuelen)});
    }
    if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(s.inflater);
      break;
    }
    if (!(inflate_flags & NGHTTP2_HD_INFLATE_EMIT) && inlen == 0) {
      Break(WireProblemKind::kHeaders, side, stream, offset, "HPACK block ended early");
      return false;
    }
  }
  s.block.clear();
  if (s.block_type == kPushPromise) return true;  // decoded only to keep the table in step

  StreamState& st = streams_[stream];
  GrpcStreamSummary& summary = summaries_[stream];
  summary.id = stream;
  const int nth = st.header_blocks[Index(side)]++;
  if (side == Side::kClient && nth == 0 && stream % 2 == 0) {
    Problem(WireProblemKind::kProtocol, side, stream, offset,
            "client opened an even-numbered stream");
  }
  if (side == Side::kServer && st.header_blocks[Index(Side::kClient)] == 0) {
    Problem(WireProblemKind::kProtocol, side, stream, offset,
            "server sent headers on a stream the client did not open");
  }
  for (const HeaderField& f : fields) {
    if (side == Side::kClient && nth == 0 && f.name == ":path") summary.path = f.value;
    if (f.name == "content-type" && summary.content_type.empty()) summary.content_type = f.value;
    if (f.name == "grpc-encoding") summary.grpc_encoding[Index(side)] = f.value;
    if (side == Side::kServer && f.name == "grpc-status") {
      int code = 0;
      if (absl::SimpleAtoi(f.value, &code)) summary.grpc_status = code;
    }
    if (side == Side::kServer && f.name == "grpc-message") summary.grpc_message = f.value;
  }
  events_->OnHeaders(side, stream, offset, s.block_end, fields);
  if (s.block_end_stream) EndSide(side, stream, offset, "END_STREAM on headers");
  return true;
}

void GrpcWireDecoder::HandleSettings(Side side, uint64_t offset, uint8_t flags,
                                     std::string_view payload) {
  (void)offset;
  if (flags & kFlagAck) {
    // `side` acknowledges the other side's oldest unacknowledged SETTINGS: from now on `side`'s
    // HPACK encoder honours the header table size announced there.
    std::deque<int64_t>& queue = sides_[Index(Other(side))].unacked_table_sizes;
    if (queue.empty()) return;
    const int64_t size = queue.front();
    queue.pop_front();
    if (size >= 0 && sides_[Index(side)].inflater) {
      nghttp2_hd_inflate_change_table_size(sides_[Index(side)].inflater, static_cast<size_t>(size));
    }
    return;
  }
  int64_t table_size = -1;
  const auto* p = reinterpret_cast<const unsigned char*>(payload.data());
  for (size_t i = 0; i + 6 <= payload.size(); i += 6) {
    const uint16_t id = static_cast<uint16_t>(p[i] << 8 | p[i + 1]);
    if (id == 0x1) table_size = Be32(p + i + 2);
  }
  sides_[Index(side)].unacked_table_sizes.push_back(table_size);
}

void GrpcWireDecoder::Finish() {
  if (finished_) return;
  for (Side side : {Side::kClient, Side::kServer}) {
    SideState& s = sides_[Index(side)];
    if (s.broken) continue;
    if (s.in_header_block) {
      Problem(WireProblemKind::kIncomplete, side, s.block_stream, s.block_offset,
              "capture ended inside a header block");
    } else if (!s.buffer.empty()) {
      Problem(WireProblemKind::kIncomplete, side, 0, s.buffer_offset,
              absl::StrCat("capture ended inside an HTTP/2 frame (", s.buffer.size(),
                           " bytes of it captured)"));
    }
  }
  for (auto& [id, st] : streams_) {
    for (Side side : {Side::kClient, Side::kServer}) {
      const MessageAssembler& a = st.assembler[Index(side)];
      if (a.partial()) {
        Problem(WireProblemKind::kIncomplete, side, id, a.start,
                absl::StrCat("capture ended inside a gRPC message: ", a.body.size(), " of ", a.need,
                             " bytes"));
      }
    }
  }
  finished_ = true;
}

}  // namespace fedface::partner::audit
