// Searching bytes for what must never leave a partner:
//  - canaries: unique tokens planted in image files, subject names and paths (exact match);
//  - stored bytes: the exact bytes the gallery keeps (e.g. each embedding's 512 float32 bytes),
//    and for embeddings also their float64, float16, int8, hex and base64 forms
//    (embedding_encodings.h): any run of kMinStoredRun or more consecutive bytes of one of them
//    is a finding;
//  - image signatures: JPEG (FF D8 FF), PNG, WebP (RIFF....WEBP), GIF, TIFF and BMP headers.
//
// How: every pattern contributes 8-byte anchors (a canary its first 8 bytes; stored bytes the 8
// bytes at every offset that is a multiple of 8, which any 16-byte run must contain whole). The
// scanner slides over the traffic once, tests each 8-byte window against a Bloom filter of anchor
// hashes, and verifies the rare hits against the sorted anchor table. Cost is about one filter
// probe per byte, independent of the number of patterns; memory is 16 bytes per anchor plus
// 4 bytes per anchor of filter.
// Anchors made of one repeated byte (zero padding) are not indexed: a run made only of such
// 8-byte parts is not distinctive and is not reported.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace fedface::partner::audit {

enum class LeakKind { kCanary, kStoredBytes, kImageSignature };

// "canary", "stored-bytes", "image-signature".
const char* LeakKindName(LeakKind kind);

struct LeakFinding {
  LeakKind kind = LeakKind::kCanary;
  uint64_t offset = 0;          // first matching byte, in the offsets given to LeakScanner::Feed
  uint64_t length = 0;          // matching bytes (for stored bytes, of the run found so far)
  int pattern = -1;             // canary or stored-bytes index in the order added; -1 for images
  uint64_t pattern_offset = 0;  // stored bytes: position of the first matching byte in them
  std::string what;             // the canary token, the stored bytes' label, or "JPEG", "PNG", ...
};

// The patterns, indexed once and then shared read-only (thread-safe after Seal()).
class LeakPatterns {
 public:
  static constexpr size_t kMinCanaryBytes = 8;
  static constexpr size_t kMaxCanaryBytes = 1024;
  static constexpr size_t kMinStoredRun = 16;

  // A token searched for exactly. Fails when shorter than kMinCanaryBytes (it would match by
  // chance) or longer than kMaxCanaryBytes.
  absl::Status AddCanary(std::string_view token);
  // Bytes of which no run of kMinStoredRun bytes may appear. `label` names them in findings
  // ("embedding 42"). Fails when shorter than kMinStoredRun.
  absl::Status AddStoredBytes(std::string_view bytes, std::string label);
  // A stored embedding (float32 bytes): its own bytes and each form of embedding_encodings.h
  // (float64, float16, int8, hex, base64), the forms labelled "<label> as <form>". Costs about
  // 12 times the anchors of AddStoredBytes.
  absl::Status AddEmbedding(std::string_view float32_bytes, const std::string& label);
  void set_image_signatures(bool on) { image_signatures_ = on; }

  // Builds the index. Call once, after the Add* calls and before scanning.
  void Seal();

  size_t canary_count() const { return canaries_.size(); }
  size_t stored_count() const { return stored_.size(); }
  size_t anchor_count() const { return anchors_.size(); }
  bool image_signatures() const { return image_signatures_; }
  // Bytes after a position that a match starting there may need.
  size_t lookahead() const { return lookahead_; }

 private:
  friend class LeakScanner;
  struct Anchor {
    uint64_t key;
    uint32_t pattern;
    uint32_t pattern_offset;  // multiple of 8 for stored bytes; 0 for canaries
    bool canary;
    bool operator<(const Anchor& o) const { return key < o.key; }
  };
  uint64_t Hash1(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> bitmap_shift_; }
  uint64_t Hash2(uint64_t key) const { return (key * 0xC2B2AE3D27D4EB4Full) >> bitmap_shift_; }
  bool MayBeAnchor(uint64_t key) const {
    const uint64_t h1 = Hash1(key);
    if (!((bitmap_[h1 >> 6] >> (h1 & 63)) & 1)) return false;
    const uint64_t h2 = Hash2(key);
    return (bitmap_[h2 >> 6] >> (h2 & 63)) & 1;
  }

  std::vector<std::string> canaries_;
  std::vector<std::string> stored_;
  std::vector<std::string> stored_labels_;
  std::vector<Anchor> anchors_;  // sorted by key after Seal
  std::vector<uint64_t> bitmap_;
  int bitmap_shift_ = 64;
  size_t lookahead_ = 32;
  bool image_signatures_ = true;
  bool sealed_ = false;
};

// Scans one byte stream that arrives in pieces; matches that straddle pieces are found.
// Not thread-safe; many scanners may share one sealed LeakPatterns.
class LeakScanner {
 public:
  // Findings kept per scanner; beyond this they are only counted (dropped_findings()).
  static constexpr size_t kMaxFindings = 1000;

  explicit LeakScanner(const LeakPatterns* patterns) : patterns_(patterns) {}

  // The bytes at [offset, offset + bytes.size()). When offset does not follow the previous
  // piece, the previous one is flushed first: nothing is matched across the discontinuity.
  void Feed(uint64_t offset, std::string_view bytes);
  // Scans what is still held back waiting for lookahead. Call at the end of the stream and
  // before a gap.
  void Flush();

  const std::vector<LeakFinding>& findings() const { return findings_; }
  std::vector<LeakFinding> TakeFindings();
  uint64_t dropped_findings() const { return dropped_; }
  uint64_t scanned_bytes() const { return scanned_; }

 private:
  void ScanUpTo(size_t end);
  void CheckAnchors(size_t p, uint64_t key);
  void CheckImage(size_t p);
  void Report(LeakFinding finding);

  const LeakPatterns* const patterns_;
  std::string window_;  // bytes [window_offset_, window_offset_ + window_.size())
  uint64_t window_offset_ = 0;
  size_t next_ = 0;  // first position of window_ not scanned yet
  std::vector<LeakFinding> findings_;
  uint64_t dropped_ = 0;
  uint64_t scanned_ = 0;
};

// Scans one complete buffer (offsets from 0).
std::vector<LeakFinding> ScanForLeaks(const LeakPatterns& patterns, std::string_view bytes);

}  // namespace fedface::partner::audit
