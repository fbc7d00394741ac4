// Writes a signed model package folder:
//   PKG/weights.dat          the dlib serialization of the face ResNet (bytes given by the caller)
//   PKG/selftest/chipN.png   lossless RGB chips (N = 0, 1, ...)
//   PKG/manifest.json        SerializeManifest() of the filled-in manifest
//   PKG/manifest.sig         raw 64-byte Ed25519 signature over the exact manifest.json bytes
// The folder is built as PKG.tmp-XXXXXX next to PKG, fsynced, then renamed into place, so PKG
// either does not exist or is complete. An existing PKG is never overwritten.
#pragma once

#include <opencv2/core/mat.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/embedding.h"
#include "core/package/ed25519.h"
#include "core/package/model_manifest.h"

namespace fedface {

// One reference chip and the embedding the packaging engine computed for it.
struct SelfTestChip {
  cv::Mat chip_rgb;  // kChipSize x kChipSize CV_8UC3, RGB order (NOT OpenCV's BGR)
  Embedding embedding{};
};

// The manifest fields the caller decides; the writer fills in weights, self_test cases,
// signing_key_id, format, architecture and input.
struct PackageFields {
  std::string model_id = "dlib-face-resnet";
  std::string version;  // semver-like, validated
  ModelSource source;
  double default_threshold = 0.6;
  double self_test_tolerance = 1e-4;
  std::string created_at;                           // "" = now (UTC)
  std::optional<Int8Calibration> int8_calibration;  // the onednn-int8 backend's, when computed
};

// Writes the package and returns the manifest it signed. Fails (writing nothing at out_dir)
// when out_dir exists, a field is invalid, weights are empty or above kMaxWeightsBytes, there
// are 0 or more than kMaxSelfTestCases chips, a chip is not 150x150 CV_8UC3 or its PNG exceeds
// kMaxChipBytes, or any write fails. Not safe to call concurrently for the same out_dir.
absl::StatusOr<ModelManifest> WriteModelPackage(const std::string& out_dir,
                                                const PackageFields& fields,
                                                const std::string& weights,
                                                const std::vector<SelfTestChip>& self_test,
                                                const Ed25519PrivateKey& key);

}  // namespace fedface
