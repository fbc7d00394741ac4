#include "core/engine/image_header.h"

#include <cstdint>
#include <cstdlib>
#include <string>

namespace fedface {
namespace {

uint32_t Be16(std::string_view b, size_t at) { return (uint8_t(b[at]) << 8) | uint8_t(b[at + 1]); }
uint32_t Be32(std::string_view b, size_t at) { return (Be16(b, at) << 16) | Be16(b, at + 2); }
uint32_t Le16(std::string_view b, size_t at) { return uint8_t(b[at]) | (uint8_t(b[at + 1]) << 8); }
uint32_t Le32(std::string_view b, size_t at) { return Le16(b, at) | (Le16(b, at + 2) << 16); }

absl::Status Truncated(const char* format) {
  return absl::InvalidArgumentError(std::string("truncated or malformed ") + format + " header");
}

absl::StatusOr<ImageDimensions> Jpeg(std::string_view b) {
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (uint8_t(b[i]) != 0xFF) return Truncated("JPEG");
    uint8_t marker = uint8_t(b[i + 1]);
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;
      continue;
    }
    const uint32_t len = Be16(b, i + 2);
    if (len < 2) return Truncated("JPEG");
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (i + 9 > b.size()) return Truncated("JPEG");
      return ImageDimensions{Be16(b, i + 7), Be16(b, i + 5), "jpeg"};
    }
    if (marker == 0xDA || marker == 0xD9) break;  // scan data before any frame header
    i += 2 + len;
  }
  return Truncated("JPEG");
}

absl::StatusOr<ImageDimensions> Png(std::string_view b) {
  if (b.size() < 24 || b.substr(12, 4) != "IHDR") return Truncated("PNG");
  return ImageDimensions{Be32(b, 16), Be32(b, 20), "png"};
}

absl::StatusOr<ImageDimensions> Bmp(std::string_view b) {
  if (b.size() < 26) return Truncated("BMP");
  const uint32_t header = Le32(b, 14);
  if (header == 12) return ImageDimensions{Le16(b, 18), Le16(b, 20), "bmp"};
  const long h = static_cast<int32_t>(Le32(b, 22));
  return ImageDimensions{static_cast<int32_t>(Le32(b, 18)), std::labs(h), "bmp"};
}

absl::StatusOr<ImageDimensions> Webp(std::string_view b) {
  if (b.size() < 30) return Truncated("WebP");
  std::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8 ") {
    return ImageDimensions{Le16(b, 26) & 0x3FFF, Le16(b, 28) & 0x3FFF, "webp"};
  }
  if (chunk == "VP8L") {
    const uint32_t bits = Le32(b, 21);
    return ImageDimensions{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, "webp"};
  }
  if (chunk == "VP8X") {
    const uint32_t w = uint8_t(b[24]) | (uint8_t(b[25]) << 8) | (uint8_t(b[26]) << 16);
    const uint32_t h = uint8_t(b[27]) | (uint8_t(b[28]) << 8) | (uint8_t(b[29]) << 16);
    return ImageDimensions{long(w) + 1, long(h) + 1, "webp"};
  }
  return Truncated("WebP");
}

absl::StatusOr<ImageDimensions> Tiff(std::string_view b) {
  const bool le = b[0] == 'I';
  auto u16 = [&](size_t at) { return le ? Le16(b, at) : Be16(b, at); };
  auto u32 = [&](size_t at) { return le ? Le32(b, at) : Be32(b, at); };
  if (b.size() < 8) return Truncated("TIFF");
  const size_t ifd = u32(4);
  if (ifd + 2 > b.size()) return Truncated("TIFF");
  const size_t entries = u16(ifd);
  long width = 0, height = 0;
  for (size_t e = 0; e < entries; ++e) {
    const size_t at = ifd + 2 + e * 12;
    if (at + 12 > b.size()) return Truncated("TIFF");
    const uint32_t tag = u16(at), type = u16(at + 2);
    const long value = type == 3 ? long(u16(at + 8)) : long(u32(at + 8));
    if (tag == 256) width = value;
    if (tag == 257) height = value;
  }
  if (width <= 0 || height <= 0) return Truncated("TIFF");
  return ImageDimensions{width, height, "tiff"};
}

}  // namespace

bool JpegIsComplete(std::string_view b) {
  // Walk the marker segments to the first start-of-scan; inside entropy-coded data 0xFF is
  // always stuffed (FF 00) or a restart marker, so an FF D9 after it is the real end.
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (uint8_t(b[i]) != 0xFF) return false;
    const uint8_t marker = uint8_t(b[i + 1]);
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    if (marker == 0xDA) break;
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      i += 2;
      continue;
    }
    i += 2 + Be16(b, i + 2);
  }
  return b.find("\xFF\xD9", i) != std::string_view::npos;
}

absl::Status CheckImageSize(const ImageDimensions& dims, int64_t max_pixels) {
  if (dims.width <= 0 || dims.height <= 0) {
    return absl::InvalidArgumentError(std::string(dims.format) + " header gives an empty image");
  }
  // width * height overflows int64 for 2^32-sided PNG/TIFF headers (found by image_header_fuzz).
  if (dims.width > max_pixels / dims.height) {
    return absl::ResourceExhaustedError(
        std::string(dims.format) + " image of " + std::to_string(dims.width) + "x" +
        std::to_string(dims.height) + " pixels exceeds the limit of " + std::to_string(max_pixels) +
        " pixels");
  }
  return absl::OkStatus();
}

absl::StatusOr<ImageDimensions> ReadImageDimensions(std::string_view b) {
  if (b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF) {
    return Jpeg(b);
  }
  if (b.size() >= 8 && b.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8)) return Png(b);
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return Webp(b);
  if (b.size() >= 2 && b.substr(0, 2) == "BM") return Bmp(b);
  if (b.size() >= 4 && (b.substr(0, 4) == std::string_view("II*\0", 4) ||
                        b.substr(0, 4) == std::string_view("MM\0*", 4))) {
    return Tiff(b);
  }
  return absl::InvalidArgumentError("not a JPEG, PNG, WebP, BMP or TIFF image");
}

}  // namespace fedface
