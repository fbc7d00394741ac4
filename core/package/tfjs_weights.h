// Reads face-api's tfjs face recognition weights: face_recognition_model-weights_manifest.json
// and the .bin shard(s) it lists, in DIR/model/ or DIR itself.
//
// The weights manifest is a JSON list of groups {"paths": [...], "weights": [{name, shape,
// dtype, quantization?}]}. A group's .bin files are concatenated in "paths" order and its
// weights are laid out back to back. float32 entries are raw little-endian float32; entries
// with quantization {"dtype": "uint8", "scale": s, "min": m} are one byte per value and
// dequantize as byte * s + m. Any other dtype, a size that disagrees with the shape, a
// truncated or over-long .bin is an error naming the file and the tensor.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/face_resnet.h"

namespace fedface {

inline constexpr char kTfjsRecognitionManifest[] = "face_recognition_model-weights_manifest.json";

struct TfjsWeights {
  std::vector<NamedTensor> tensors;  // manifest order (117 for face-api 1.7.15)
  std::string manifest_path;
  std::string manifest_sha256;  // of the manifest file's bytes
  std::string bin_sha256;       // of the concatenated .bin bytes
};

// Finds the manifest in `faceapi_dir`/model/ or `faceapi_dir`, reads and decodes everything.
absl::StatusOr<TfjsWeights> ReadTfjsRecognitionWeights(const std::string& faceapi_dir);

// Decodes an in-memory manifest; group_bins[i] is the concatenation of group i's "paths" files.
// Each group's bytes must be exactly the sum of its weights' sizes. `source` names the manifest
// in errors.
absl::StatusOr<std::vector<NamedTensor>> DecodeTfjsWeights(
    std::string_view manifest_json, const std::vector<std::string_view>& group_bins,
    std::string_view source);

}  // namespace fedface
