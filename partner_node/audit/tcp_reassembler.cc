#include "partner_node/audit/tcp_reassembler.h"

#include <algorithm>
#include <cstring>

namespace fedface::partner::audit {

int64_t TcpReassembler::OffsetOf(uint32_t seq) const {
  const uint32_t expected = base_seq_ + static_cast<uint32_t>(next_);
  const int32_t delta = static_cast<int32_t>(seq - expected);
  return static_cast<int64_t>(next_) + delta;
}

void TcpReassembler::OnSegment(uint32_t seq, uint8_t tcp_flags, std::string_view payload,
                               uint32_t missing, const PacketPosition& from) {
  const bool syn = tcp_flags & kTcpSyn;
  const uint32_t data_seq = syn ? seq + 1 : seq;
  if (syn && !has_base_) {
    base_seq_ = data_seq;
    has_base_ = syn_seen_ = true;
  }
  if (!has_base_) {
    // The capture began after the handshake: number the stream from this segment on.
    base_seq_ = data_seq;
    has_base_ = true;
  }
  if (!payload.empty()) ++stats_.segments;
  const int64_t offset = OffsetOf(data_seq);
  if (tcp_flags & kTcpRst) {
    // Data on a RST is never delivered to the peer's application, but it did leave the host.
    rst_seen_ = true;
    if (!payload.empty())
      sink_->OnUnsequencedBytes(std::max<int64_t>(offset, 0), payload, false, from);
    return;
  }
  if (tcp_flags & kTcpFin) {
    const int64_t end = offset + static_cast<int64_t>(payload.size()) + missing;
    if (end >= 0) fin_offset_ = static_cast<uint64_t>(end);
  }
  if (finished_) {
    if (!payload.empty()) {
      sink_->OnUnsequencedBytes(std::max<int64_t>(offset, 0), payload, false, from);
    }
    return;
  }
  Place(offset, payload, from);
}

void TcpReassembler::Place(int64_t offset, std::string_view bytes, const PacketPosition& from) {
  if (bytes.empty()) return;
  if (!syn_seen_ && !start_gap_reported_) {
    start_gap_reported_ = true;
    ++stats_.gaps;
    sink_->OnGap(0, kUnknownLength);
  }
  if (offset < 0) {
    // Sent before the first captured segment of a stream whose start was not captured.
    const size_t before = static_cast<size_t>(std::min<int64_t>(-offset, bytes.size()));
    stats_.uncompared_bytes += before;
    sink_->OnUnsequencedBytes(0, bytes.substr(0, before), false, from);
    bytes.remove_prefix(before);
    offset = 0;
    if (bytes.empty()) return;
  }
  uint64_t off = static_cast<uint64_t>(offset);
  if (off < next_) {
    const size_t overlap = static_cast<size_t>(std::min<uint64_t>(next_ - off, bytes.size()));
    CompareDelivered(off, bytes.substr(0, overlap), from);
    bytes.remove_prefix(overlap);
    off += overlap;
    if (bytes.empty()) return;
  }
  if (off == next_) {
    Deliver(bytes, from);
    Drain();
    return;
  }
  ++stats_.reordered_segments;
  pending_bytes_ += bytes.size();
  pending_.emplace(off, Pending{std::string(bytes), from});
  if (pending_bytes_ > kMaxBufferedBytes) {
    SkipTo(pending_.begin()->first);
    Drain();
  }
}

void TcpReassembler::CompareDelivered(uint64_t offset, std::string_view bytes,
                                      const PacketPosition& from) {
  if (offset < history_start_) {
    const size_t old =
        static_cast<size_t>(std::min<uint64_t>(history_start_ - offset, bytes.size()));
    stats_.uncompared_bytes += old;
    sink_->OnUnsequencedBytes(offset, bytes.substr(0, old), false, from);
    bytes.remove_prefix(old);
    offset += old;
    if (bytes.empty()) return;
  }
  const size_t at = static_cast<size_t>(offset - history_start_);
  if (at + bytes.size() <= history_.size() &&
      std::memcmp(history_.data() + at, bytes.data(), bytes.size()) == 0) {
    stats_.duplicate_bytes += bytes.size();
    return;
  }
  stats_.conflicting_bytes += bytes.size();
  sink_->OnUnsequencedBytes(offset, bytes, true, from);
}

void TcpReassembler::Deliver(std::string_view bytes, const PacketPosition& from) {
  sink_->OnBytes(next_, bytes, from);
  next_ += bytes.size();
  stats_.delivered_bytes += bytes.size();
  history_.append(bytes);
  if (history_.size() > 2 * kHistoryBytes) {
    const size_t drop = history_.size() - kHistoryBytes;
    history_.erase(0, drop);
    history_start_ += drop;
  }
}

void TcpReassembler::Drain() {
  while (!pending_.empty() && pending_.begin()->first <= next_) {
    auto node = pending_.extract(pending_.begin());
    pending_bytes_ -= node.mapped().data.size();
    // Place again: the part already delivered is compared, the rest delivered.
    std::string data = std::move(node.mapped().data);
    const PacketPosition from = node.mapped().from;
    uint64_t off = node.key();
    std::string_view view(data);
    if (off < next_) {
      const size_t overlap = static_cast<size_t>(std::min<uint64_t>(next_ - off, view.size()));
      CompareDelivered(off, view.substr(0, overlap), from);
      view.remove_prefix(overlap);
    }
    if (!view.empty()) Deliver(view, from);
  }
}

void TcpReassembler::SkipTo(uint64_t offset) {
  if (offset <= next_) return;
  ++stats_.gaps;
  stats_.gap_bytes += offset - next_;
  sink_->OnGap(next_, offset - next_);
  next_ = offset;
  history_.clear();
  history_start_ = offset;
}

void TcpReassembler::Finish() {
  if (finished_) return;
  finished_ = true;
  while (!pending_.empty()) {
    SkipTo(pending_.begin()->first);
    Drain();
  }
  if (fin_offset_ && *fin_offset_ > next_) SkipTo(*fin_offset_);
  std::string().swap(history_);
}

}  // namespace fedface::partner::audit
