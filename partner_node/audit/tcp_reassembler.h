// TCP stream reassembly for one direction of one connection, by sequence number.
//
// What comes out: the direction's bytes in stream order, each byte once (OnBytes), with every
// hole that the capture cannot fill reported as a gap (OnGap) instead of being skipped silently.
// Retransmissions are compared with what was delivered: identical copies are dropped; a copy
// that differs (or cannot be compared any more) is handed over as OnUnsequencedBytes, because
// those bytes were sent too and must not escape a content scan.
//
// Offsets are 0-based positions in the direction's byte stream: offset 0 is the byte after the
// SYN when the SYN was captured, else the first byte captured (and OnGap(0, kUnknownLength)
// says that the stream's start is missing). 64-bit offsets unwrap 32-bit sequence numbers.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "partner_node/audit/captured_packet.h"

namespace fedface::partner::audit {

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // The next in-order bytes: offset equals the end of everything delivered or skipped before.
  // `from` is the frame that carried them.
  virtual void OnBytes(uint64_t offset, std::string_view bytes, const PacketPosition& from) = 0;
  // Bytes [offset, offset + length) were never captured; the next OnBytes starts after them.
  // length == kUnknownLength: how much is missing is unknown (the start of the stream).
  virtual void OnGap(uint64_t offset, uint64_t length) = 0;
  // Bytes that were sent but have no place in the in-order stream: a retransmission whose
  // content differs from the first copy (`conflicting` true), or one that could not be compared
  // because it is older than the comparison window or than the start of the capture.
  virtual void OnUnsequencedBytes(uint64_t offset, std::string_view bytes, bool conflicting,
                                  const PacketPosition& from) = 0;
};

inline constexpr uint64_t kUnknownLength = std::numeric_limits<uint64_t>::max();

struct ReassemblyStats {
  uint64_t segments = 0;           // segments carrying payload
  uint64_t delivered_bytes = 0;    // through OnBytes
  uint64_t duplicate_bytes = 0;    // retransmitted copies identical to what was delivered
  uint64_t conflicting_bytes = 0;  // retransmitted copies that differ
  uint64_t uncompared_bytes = 0;   // retransmitted copies that could not be compared
  uint64_t gaps = 0;
  uint64_t gap_bytes = 0;           // known-length gaps only
  uint64_t reordered_segments = 0;  // arrived ahead of a hole and waited for it
};

class TcpReassembler {
 public:
  // sink must outlive this object. Not thread-safe.
  explicit TcpReassembler(StreamSink* sink) : sink_(sink) {}
  TcpReassembler(const TcpReassembler&) = delete;
  TcpReassembler& operator=(const TcpReassembler&) = delete;

  // A captured segment of this direction. `payload` excludes headers; `missing` is how many
  // payload bytes the capture cut off at the end (snaplen): they become a gap.
  void OnSegment(uint32_t seq, uint8_t tcp_flags, std::string_view payload, uint32_t missing,
                 const PacketPosition& from);

  // End of the capture (or of the connection): delivers what waits behind holes, reporting each
  // hole, and reports a missing tail when a FIN was seen beyond the delivered bytes. Idempotent.
  void Finish();

  bool syn_seen() const { return syn_seen_; }
  std::optional<uint32_t> initial_seq() const {
    return syn_seen_ ? std::optional<uint32_t>(base_seq_ - 1) : std::nullopt;
  }
  bool fin_seen() const { return fin_offset_.has_value(); }
  // True when a FIN was seen and every byte before it was delivered.
  bool complete() const {
    return fin_offset_.has_value() && next_ >= *fin_offset_ && pending_.empty();
  }
  bool rst_seen() const { return rst_seen_; }
  uint64_t next_offset() const { return next_; }
  const ReassemblyStats& stats() const { return stats_; }

  // Bytes held waiting for a hole before a gap is declared anyway.
  static constexpr uint64_t kMaxBufferedBytes = uint64_t{64} << 20;
  // How many delivered bytes are kept to compare retransmissions with.
  static constexpr uint64_t kHistoryBytes = uint64_t{4} << 20;

 private:
  struct Pending {
    std::string data;
    PacketPosition from;
  };

  // Maps a sequence number to a stream offset near the delivery point.
  int64_t OffsetOf(uint32_t seq) const;
  // Places [offset, offset + bytes.size()) into the stream: trims what was delivered already
  // (comparing it), delivers or buffers the rest.
  void Place(int64_t offset, std::string_view bytes, const PacketPosition& from);
  void CompareDelivered(uint64_t offset, std::string_view bytes, const PacketPosition& from);
  void Deliver(std::string_view bytes, const PacketPosition& from);
  void Drain();
  void SkipTo(uint64_t offset);

  StreamSink* const sink_;
  bool has_base_ = false;
  bool syn_seen_ = false;
  bool rst_seen_ = false;
  bool finished_ = false;
  bool start_gap_reported_ = false;
  uint32_t base_seq_ = 0;  // sequence number of offset 0
  uint64_t next_ = 0;      // end of what was delivered or skipped
  std::optional<uint64_t> fin_offset_;
  std::multimap<uint64_t, Pending> pending_;  // by start offset; entries may overlap
  uint64_t pending_bytes_ = 0;
  std::string history_;  // delivered bytes [history_start_, next_) (may end before a gap)
  uint64_t history_start_ = 0;
  ReassemblyStats stats_;
};

}  // namespace fedface::partner::audit
