// The forms in which an embedding could be smuggled out, for the leak scanner: a crafted model or
// a faulty release could carry a stored embedding not only as its own float32 bytes but widened,
// narrowed, quantized or printed. Each form here is searched for like the stored bytes
// themselves (any run of LeakPatterns::kMinStoredRun bytes of it is a finding).
//
// ENSURES for a float32 embedding x (host order, little-endian x86-64):
//   float64     every value widened to IEEE binary64, little-endian;
//   float16     every value rounded to IEEE binary16 (nearest, ties to even), little-endian;
//   int8/maxabs round(x * 127 / max|x|) as int8, and the same plus 128 as uint8;
//   int8/127    round(x * 127) clamped to [-127, 127] as int8, and plus 128 as uint8;
//   hex         the float32 bytes as lower-case and as upper-case hexadecimal text;
//   base64      the float32 bytes as standard base64 text, for each of the three alignments the
//               embedding can have in a longer encoded stream (characters that depend on
//               neighbouring bytes are left out).
// NOT covered (stated in docs/threat-model.md): scaled, rotated, permuted or partial-precision
// forms other than these, and values spread over many messages; the egress guard's grid checks
// are what bound those.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fedface::partner::audit {

struct EncodedEmbedding {
  std::string form;   // "float64", "float16", "int8/maxabs", "uint8/maxabs", "int8/127", ...
  std::string bytes;  // what would appear on the wire
};

// The forms above of `float32_bytes` (a multiple of 4 bytes). The float32 bytes themselves are
// not included.
std::vector<EncodedEmbedding> EncodingsOf(std::string_view float32_bytes);

}  // namespace fedface::partner::audit
