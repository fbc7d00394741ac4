#include "partner_node/audit/embedding_encodings.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fedface::partner::audit {
namespace {

std::vector<float> Floats(std::string_view bytes) {
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

template <typename T>
void Append(std::string* out, T value) {
  char raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  out->append(raw, sizeof(T));
}

// IEEE binary16, round to nearest, ties to even; overflow to infinity; NaN stays NaN.
uint16_t ToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past the largest half
  if (abs < 0x38800000u) {                        // below the smallest normal half: subnormal
    if (abs < 0x33000000u) return sign;           // rounds to zero
    const uint32_t mantissa = (abs & 0x007fffffu) | 0x00800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    const uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t midpoint = 1u << (shift - 1);
    const uint32_t rounded = half + ((rest > midpoint || (rest == midpoint && (half & 1))) ? 1 : 0);
    return sign | static_cast<uint16_t>(rounded);
  }
  const uint32_t rebased = abs - 0x38000000u;  // exponent bias 127 -> 15
  const uint32_t half = rebased >> 13;
  const uint32_t rest = rebased & 0x1fffu;
  const uint32_t rounded = half + ((rest > 0x1000u || (rest == 0x1000u && (half & 1))) ? 1 : 0);
  return sign | static_cast<uint16_t>(rounded);
}

std::string Hex(std::string_view bytes, const char* digits) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) out.push_back(kAlphabet[(n >> shift) & 63]);
  }
  return out;  // whole groups only: a partial last group depends on the bytes that follow
}

void AddQuantized(const std::vector<float>& v, double scale, const std::string& name,
                  std::vector<EncodedEmbedding>* out) {
  std::string signed_bytes, unsigned_bytes;
  for (float x : v) {
    const double q = std::clamp(std::nearbyint(static_cast<double>(x) * scale), -127.0, 127.0);
    const int8_t s = static_cast<int8_t>(q);
    signed_bytes.push_back(static_cast<char>(s));
    unsigned_bytes.push_back(static_cast<char>(static_cast<uint8_t>(s + 128)));
  }
  out->push_back({"int8/" + name, std::move(signed_bytes)});
  out->push_back({"uint8/" + name, std::move(unsigned_bytes)});
}

}  // namespace

std::vector<EncodedEmbedding> EncodingsOf(std::string_view float32_bytes) {
  std::vector<EncodedEmbedding> out;
  const std::vector<float> v = Floats(float32_bytes);
  if (v.empty()) return out;
  std::string f64, f16;
  for (float x : v) {
    Append(&f64, static_cast<double>(x));
    Append(&f16, ToHalf(x));
  }
  out.push_back({"float64", std::move(f64)});
  out.push_back({"float16", std::move(f16)});
  float max_abs = 0;
  for (float x : v) {
    if (std::isfinite(x)) max_abs = std::max(max_abs, std::fabs(x));
  }
  if (max_abs > 0) AddQuantized(v, 127.0 / max_abs, "maxabs", &out);
  AddQuantized(v, 127.0, "127", &out);
  const std::string_view raw = float32_bytes.substr(0, v.size() * 4);
  out.push_back({"hex", Hex(raw, "0123456789abcdef")});
  out.push_back({"HEX", Hex(raw, "0123456789ABCDEF")});
  // In a longer base64 stream the embedding starts at some byte offset; its own bytes fill whole
  // groups from the first group boundary inside it. Encode from each possible boundary.
  for (size_t skip = 0; skip < 3 && skip < raw.size(); ++skip) {
    out.push_back({"base64+" + std::to_string(skip), Base64(raw.substr(skip))});
  }
  return out;
}

}  // namespace fedface::partner::audit
