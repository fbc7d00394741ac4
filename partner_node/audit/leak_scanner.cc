#include "partner_node/audit/leak_scanner.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/audit/embedding_encodings.h"

namespace fedface::partner::audit {
namespace {

constexpr size_t kAnchorBytes = 8;
// Anchors every 8 bytes: a 16-byte run starting anywhere holds one whole (it starts at most 7
// bytes before the next multiple of 8, and 7 + 8 < 16).
constexpr size_t kStoredStride = 8;
constexpr size_t kMaxExtension = 16;  // bytes past an anchor compared when verifying a run
constexpr size_t kLookBehind = kStoredStride - 1;

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

bool OneRepeatedByte(uint64_t key) { return key == (key & 0xFF) * 0x0101010101010101ull; }

// First bytes at which an image signature may start.
constexpr std::array<bool, 256> MakeImageFirstBytes() {
  std::array<bool, 256> t{};
  for (unsigned char c : {0xFF, 0x89, 0x52 /*R*/, 0x47 /*G*/, 0x49 /*I*/, 0x4D /*M*/, 0x42 /*B*/}) {
    t[c] = true;
  }
  return t;
}
constexpr std::array<bool, 256> kImageFirstBytes = MakeImageFirstBytes();

uint32_t Le32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

const char* LeakKindName(LeakKind kind) {
  switch (kind) {
    case LeakKind::kCanary:
      return "canary";
    case LeakKind::kStoredBytes:
      return "stored-bytes";
    case LeakKind::kImageSignature:
      return "image-signature";
  }
  return "?";
}

absl::Status LeakPatterns::AddCanary(std::string_view token) {
  if (sealed_) return absl::FailedPreconditionError("LeakPatterns: AddCanary after Seal");
  if (token.size() < kMinCanaryBytes || token.size() > kMaxCanaryBytes) {
    return absl::InvalidArgumentError(absl::StrCat("canary '", std::string(token.substr(0, 64)),
                                                   "' has ", token.size(), " bytes; need ",
                                                   kMinCanaryBytes, "..", kMaxCanaryBytes));
  }
  canaries_.emplace_back(token);
  return absl::OkStatus();
}

absl::Status LeakPatterns::AddStoredBytes(std::string_view bytes, std::string label) {
  if (sealed_) return absl::FailedPreconditionError("LeakPatterns: AddStoredBytes after Seal");
  if (bytes.size() < kMinStoredRun) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": ", bytes.size(), " bytes, fewer than ", kMinStoredRun));
  }
  stored_.emplace_back(bytes);
  stored_labels_.push_back(std::move(label));
  return absl::OkStatus();
}

absl::Status LeakPatterns::AddEmbedding(std::string_view float32_bytes, const std::string& label) {
  RETURN_IF_ERROR(AddStoredBytes(float32_bytes, label));
  for (EncodedEmbedding& e : EncodingsOf(float32_bytes)) {
    if (e.bytes.size() < kMinStoredRun) continue;  // a tiny vector's narrow forms
    stored_.push_back(std::move(e.bytes));
    stored_labels_.push_back(absl::StrCat(label, " as ", e.form));
  }
  return absl::OkStatus();
}

void LeakPatterns::Seal() {
  if (sealed_) return;
  sealed_ = true;
  for (size_t i = 0; i < canaries_.size(); ++i) {
    anchors_.push_back({Load64(canaries_[i].data()), static_cast<uint32_t>(i), 0, true});
    lookahead_ = std::max(lookahead_, canaries_[i].size());
  }
  for (size_t i = 0; i < stored_.size(); ++i) {
    const std::string& s = stored_[i];
    for (size_t off = 0; off + kAnchorBytes <= s.size(); off += kStoredStride) {
      const uint64_t key = Load64(s.data() + off);
      if (OneRepeatedByte(key)) continue;
      anchors_.push_back({key, static_cast<uint32_t>(i), static_cast<uint32_t>(off), false});
    }
  }
  std::sort(anchors_.begin(), anchors_.end());
  if (anchors_.empty()) return;
  // A Bloom filter with two bits per anchor and about 32 bits per anchor: false probes ~0.4%.
  int bits_log2 = 16;
  while (bits_log2 < 31 && (uint64_t{1} << bits_log2) < anchors_.size() * 32) ++bits_log2;
  bitmap_.assign((uint64_t{1} << bits_log2) / 64, 0);
  bitmap_shift_ = 64 - bits_log2;
  for (const Anchor& a : anchors_) {
    for (uint64_t h : {Hash1(a.key), Hash2(a.key)}) bitmap_[h >> 6] |= uint64_t{1} << (h & 63);
  }
}

void LeakScanner::Feed(uint64_t offset, std::string_view bytes) {
  if (bytes.empty()) return;
  if (!window_.empty() && offset != window_offset_ + window_.size()) Flush();
  if (window_.empty()) {
    window_offset_ = offset;
    next_ = 0;
  }
  window_.append(bytes);
  const size_t lookahead = patterns_->lookahead();
  if (window_.size() >= lookahead) ScanUpTo(window_.size() - lookahead + 1);
  const size_t keep = std::min(next_, kLookBehind);
  const size_t drop = next_ - keep;
  if (drop > 0) {
    window_.erase(0, drop);
    window_offset_ += drop;
    next_ = keep;
  }
}

void LeakScanner::Flush() {
  ScanUpTo(window_.size());
  window_.clear();
  next_ = 0;
}

std::vector<LeakFinding> LeakScanner::TakeFindings() {
  std::vector<LeakFinding> out;
  out.swap(findings_);
  return out;
}

void LeakScanner::ScanUpTo(size_t end) {
  if (end <= next_) return;
  const char* d = window_.data();
  const size_t n = window_.size();
  const bool images = patterns_->image_signatures();
  const bool anchors = !patterns_->anchors_.empty();
  for (size_t p = next_; p < end; ++p) {
    if (images && kImageFirstBytes[static_cast<unsigned char>(d[p])]) CheckImage(p);
    if (anchors && p + kAnchorBytes <= n) {
      const uint64_t key = Load64(d + p);
      if (patterns_->MayBeAnchor(key)) CheckAnchors(p, key);
    }
  }
  scanned_ += end - next_;
  next_ = end;
}

void LeakScanner::CheckAnchors(size_t p, uint64_t key) {
  const auto& anchors = patterns_->anchors_;
  auto [lo, hi] =
      std::equal_range(anchors.begin(), anchors.end(), LeakPatterns::Anchor{key, 0, 0, false});
  const char* d = window_.data();
  const size_t n = window_.size();
  for (auto it = lo; it != hi; ++it) {
    if (it->canary) {
      const std::string& token = patterns_->canaries_[it->pattern];
      if (n - p >= token.size() && std::memcmp(d + p, token.data(), token.size()) == 0) {
        Report({LeakKind::kCanary, window_offset_ + p, token.size(), static_cast<int>(it->pattern),
                0, token});
      }
      continue;
    }
    const std::string& s = patterns_->stored_[it->pattern];
    const size_t o = it->pattern_offset;
    size_t back = 0;
    while (back < kLookBehind && back < o && back < p && d[p - back - 1] == s[o - back - 1]) {
      ++back;
    }
    size_t j = kAnchorBytes;
    while (j < kAnchorBytes + kMaxExtension && o + j < s.size() && p + j < n &&
           d[p + j] == s[o + j]) {
      ++j;
    }
    if (back + j < LeakPatterns::kMinStoredRun) continue;
    const uint64_t start = window_offset_ + p - back;
    const uint64_t end = window_offset_ + p + j;
    const uint64_t pattern_start = o - back;
    // Later anchors of one leaked run land on the same diagonal: extend the finding.
    bool merged = false;
    const size_t first = findings_.size() > 8 ? findings_.size() - 8 : 0;
    for (size_t k = findings_.size(); k-- > first;) {
      LeakFinding& f = findings_[k];
      if (f.kind == LeakKind::kStoredBytes && f.pattern == static_cast<int>(it->pattern) &&
          f.offset - f.pattern_offset == start - pattern_start && start <= f.offset + f.length) {
        f.length = std::max(f.length, end - f.offset);
        merged = true;
        break;
      }
    }
    if (!merged) {
      Report({LeakKind::kStoredBytes, start, end - start, static_cast<int>(it->pattern),
              pattern_start, patterns_->stored_labels_[it->pattern]});
    }
  }
}

void LeakScanner::CheckImage(size_t p) {
  const auto* d = reinterpret_cast<const unsigned char*>(window_.data()) + p;
  const size_t avail = window_.size() - p;
  auto starts = [&](std::string_view sig, size_t at = 0) {
    return avail >= at + sig.size() && std::memcmp(d + at, sig.data(), sig.size()) == 0;
  };
  const char* what = nullptr;
  size_t length = 0;
  switch (d[0]) {
    case 0xFF:
      if (starts("\xFF\xD8\xFF")) what = "JPEG", length = 3;
      break;
    case 0x89:
      if (starts("\x89PNG\r\n\x1A\n")) what = "PNG", length = 8;
      break;
    case 'R':
      if (starts("RIFF") && starts("WEBP", 8)) what = "WebP", length = 12;
      break;
    case 'G':
      if (starts("GIF87a") || starts("GIF89a")) what = "GIF", length = 6;
      break;
    case 'I':
      if (starts(std::string_view("II*\0", 4))) what = "TIFF", length = 4;
      break;
    case 'M':
      if (starts(std::string_view("MM\0*", 4))) what = "TIFF", length = 4;
      break;
    case 'B':
      // "BM" alone is too common; also require zero reserved words and a known DIB header size.
      if (avail >= 18 && d[1] == 'M' && Le32(d + 6) == 0) {
        const uint32_t dib = Le32(d + 14);
        if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 ||
            dib == 124) {
          what = "BMP", length = 18;
        }
      }
      break;
  }
  if (what) Report({LeakKind::kImageSignature, window_offset_ + p, length, -1, 0, what});
}

void LeakScanner::Report(LeakFinding finding) {
  if (findings_.size() >= kMaxFindings) {
    ++dropped_;
    return;
  }
  findings_.push_back(std::move(finding));
}

std::vector<LeakFinding> ScanForLeaks(const LeakPatterns& patterns, std::string_view bytes) {
  LeakScanner scanner(&patterns);
  scanner.Feed(0, bytes);
  scanner.Flush();
  return scanner.TakeFindings();
}

}  // namespace fedface::partner::audit
