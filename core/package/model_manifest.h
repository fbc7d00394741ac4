// manifest.json of a model package: what the package claims, signed by the vendor.
//
// The JSON is parsed STRICTLY: an unknown key, a missing key, a wrong type or a value the
// engine cannot honour (another input size, mean, metric, architecture) is an error naming the
// field, e.g. "manifest.json: input.width: expected 150, got 160". Serialization is
// deterministic: the same ModelManifest always gives the same bytes (sorted keys, shortest
// round-trip floats), and ParseManifest(SerializeManifest(m)) == m.
//
// Layout (keys sorted on output):
//   {"format": "fedface-model-package/1", "model_id": "dlib-face-resnet", "version": "1.0.0",
//    "architecture": "dlib_face_resnet_v1",
//    "input": {"width": 150, "height": 150, "channels": "RGB",
//              "mean_rgb": [122.782, 117.001, 104.298], "scale": 0.00390625},
//    "distance": {"metric": "euclidean", "default_threshold": 0.6},
//    "weights": {"file": "weights.dat", "bytes": N, "sha256": "<64 hex>"},
//    "self_test": {"tolerance": 1e-4,
//                  "cases": [{"chip": "selftest/chip0.png", "chip_sha256": "<64 hex>",
//                             "embedding": [128 numbers]}]},
//    "source": {"npm_package": "@vladmandic/face-api@1.7.15",
//               "manifest_sha256": "<64 hex>", "bin_sha256": "<64 hex>"},
//    "signing_key_id": "<16 hex>", "created_at": "2024-05-01T12:00:00Z",
//    "int8_calibration": {"activation_scales": [29 numbers], "chips": N,
//                         "self_test_tolerance": 0.05}}
// int8_calibration is optional: the vendor's activation scales for the onednn-int8 backend
// (core/engine/int8_calibration.h), signed with the rest; a package without it loads on dlib and
// onednn, and onednn-int8 refuses it naming the section.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/engine/embedding.h"
#include "core/engine/int8_calibration.h"

namespace fedface {

inline constexpr char kManifestFormat[] = "fedface-model-package/1";
inline constexpr char kArchitectureDlibFaceResnetV1[] = "dlib_face_resnet_v1";

// File names inside a package folder.
inline constexpr char kManifestFile[] = "manifest.json";
inline constexpr char kSignatureFile[] = "manifest.sig";
inline constexpr char kWeightsFile[] = "weights.dat";
inline constexpr char kSelfTestDir[] = "selftest";

// Size limits, checked before anything is read into memory.
inline constexpr uint64_t kMaxManifestBytes = uint64_t{1} << 20;   // 1 MiB
inline constexpr uint64_t kMaxWeightsBytes = uint64_t{256} << 20;  // 256 MiB
inline constexpr uint64_t kMaxChipBytes = uint64_t{1} << 20;       // 1 MiB per PNG
inline constexpr size_t kMaxSelfTestCases = 16;

struct ModelInput {
  int width = kChipSize;
  int height = kChipSize;
  std::string channels = "RGB";
  std::array<double, 3> mean_rgb = {122.782, 117.001, 104.298};
  double scale = 0.00390625;  // 1/256
  bool operator==(const ModelInput&) const = default;
};

struct DistanceSpec {
  std::string metric = "euclidean";
  double default_threshold = 0.6;  // dlib's published same-person threshold
  bool operator==(const DistanceSpec&) const = default;
};

struct WeightsRef {
  std::string file = kWeightsFile;
  uint64_t bytes = 0;
  std::string sha256;  // 64 lower-case hex
  bool operator==(const WeightsRef&) const = default;
};

struct SelfTestCase {
  std::string chip;         // "selftest/chipN.png", relative to the package folder
  std::string chip_sha256;  // of the PNG file's bytes
  Embedding embedding{};    // computed at packaging time
  bool operator==(const SelfTestCase&) const = default;
};

struct SelfTestSpec {
  double tolerance = 1e-4;          // max Euclidean distance allowed between stored and recomputed
  std::vector<SelfTestCase> cases;  // 1..kMaxSelfTestCases
  bool operator==(const SelfTestSpec&) const = default;
};

struct ModelSource {
  std::string npm_package;      // e.g. "@vladmandic/face-api@1.7.15"
  std::string manifest_sha256;  // of face_recognition_model-weights_manifest.json
  std::string bin_sha256;       // of the concatenated .bin files
  bool operator==(const ModelSource&) const = default;
};

struct ModelManifest {
  std::string format = kManifestFormat;
  std::string model_id;  // [a-z0-9][a-z0-9._-]{0,63}, e.g. "dlib-face-resnet"
  std::string version;   // semver: MAJOR.MINOR.PATCH[-prerelease][+build]
  std::string architecture = kArchitectureDlibFaceResnetV1;
  ModelInput input;
  DistanceSpec distance;
  WeightsRef weights;
  SelfTestSpec self_test;
  ModelSource source;
  std::string signing_key_id;  // 16 hex (see ed25519.h)
  std::string created_at;      // UTC "YYYY-MM-DDTHH:MM:SSZ"
  std::optional<Int8Calibration> int8_calibration;
  bool operator==(const ModelManifest&) const = default;
};

// Checks every field's value (fixed values, formats, ranges, limits, safe relative paths).
// Errors start with "manifest: <field>: ".
absl::Status ValidateManifest(const ModelManifest& manifest);

// Deterministic JSON bytes (2-space indented, sorted keys, trailing newline).
// REQUIRES: ValidateManifest(manifest).ok() — the writer checks before serializing.
std::string SerializeManifest(const ModelManifest& manifest);

// Strict parse + ValidateManifest. `source` names the file in errors. Fails on more than
// kMaxManifestBytes, invalid JSON, unknown/missing keys, wrong types, bad values.
absl::StatusOr<ModelManifest> ParseManifest(std::string_view json, std::string_view source);

// True for a semver-like version string (MAJOR.MINOR.PATCH[-pre][+build]).
bool IsValidModelVersion(std::string_view version);

// The current UTC time as "YYYY-MM-DDTHH:MM:SSZ".
std::string UtcNowIso8601();

}  // namespace fedface
