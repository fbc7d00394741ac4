// Verifies a model package against the vendor key the partner PINNED, and self-tests it.
//
// VerifyModelPackage checks, in this order, and stops at the first failure:
//   1. manifest.json, manifest.sig and weights.dat are regular files within their limits
//      (kMax*Bytes in model_manifest.h; sizes checked before reading);
//   2. manifest.sig is a valid signature of the exact manifest.json bytes by the pinned key
//      ("signed by another key (id X, pinned Y)" when the manifest names another key);
//   3. manifest.json parses strictly (ParseManifest);
//   4. weights.dat's size and sha256 match the manifest (hashed from the same in-memory bytes
//      that are returned, so there is no check-then-reread window);
//   5. each chip the manifest lists is within kMaxChipBytes, its sha256 matches, and it is a
//      150x150 PNG (header checked before decoding) that decodes to 8-bit colour.
// Errors are one line naming the package folder/file and the reason.
//
// Thread safety: free functions; RunSelfTest uses the given net, which is not thread-safe.
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/engine/embedding_backend.h"
#include "core/engine/face_resnet.h"
#include "core/package/ed25519.h"
#include "core/package/model_manifest.h"

namespace fedface {

struct VerifiedPackage {
  std::string dir;
  ModelManifest manifest;
  std::string manifest_bytes;  // the exact signed bytes
  std::string weights;         // weights.dat, verified
  std::vector<cv::Mat> chips;  // decoded, kChipSize x kChipSize CV_8UC3 RGB, manifest order
};

absl::StatusOr<VerifiedPackage> VerifyModelPackage(const std::string& dir,
                                                   const Ed25519PublicKey& pinned_key);

// Embeds the package's chips with `net` and requires each embedding within `tolerance` (default
// manifest.self_test.tolerance; the int8 backend passes int8_calibration.self_test_tolerance)
// Euclidean of the stored one. On failure the error names the worst case and its distance;
// *max_distance (if given) receives the largest distance seen.
absl::Status RunSelfTest(const VerifiedPackage& package, FaceResNet& net,
                         float* max_distance = nullptr,
                         std::optional<double> tolerance = std::nullopt);

struct LoadedModel {
  std::unique_ptr<FaceResNet> net;
  ModelManifest manifest;
  float self_test_max_distance = 0.f;
};

// VerifyModelPackage + MakeEmbeddingNetwork(weights, backend, the manifest's int8_calibration) +
// RunSelfTest (on that backend's network, with the calibration's tolerance for onednn-int8).
// Returns the net only when all three pass; otherwise the first failure (nothing half-loads);
// onednn-int8 on a package without int8_calibration is FailedPrecondition naming the manifest.
absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const Ed25519PublicKey& pinned_key,
                                              EmbeddingBackend backend = EmbeddingBackend::kDlib);

// Same, reading the pinned public key from a PEM file (e.g. vendor.pub).
absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const std::string& pinned_key_pem_path,
                                              EmbeddingBackend backend = EmbeddingBackend::kDlib);

}  // namespace fedface
