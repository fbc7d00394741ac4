// LoadVerifiedModel: the only path from a package folder to a usable network. Kept apart from
// package_verifier.cc because it links the engine (MakeEmbeddingNetwork).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/package/package_verifier.h"

namespace fedface {

absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const Ed25519PublicKey& pinned_key,
                                              EmbeddingBackend backend) {
  ASSIGN_OR_RETURN(auto package, VerifyModelPackage(dir, pinned_key));
  const std::optional<Int8Calibration>& calibration = package.manifest.int8_calibration;
  auto net = MakeEmbeddingNetwork(package.weights, backend, calibration ? &*calibration : nullptr);
  if (!net.ok()) {
    // A refusal of the int8 calibration names the manifest (where it is), any other the weights.
    const bool about_calibration = absl::StartsWith(net.status().message(), "int8_calibration") ||
                                   absl::StartsWith(net.status().message(), "backend onednn-int8");
    return absl::Status(net.status().code(),
                        absl::StrCat(dir, "/", about_calibration ? kManifestFile : kWeightsFile,
                                     ": ", net.status().message()));
  }
  float max_distance = 0.f;
  std::optional<double> tolerance;
  if (backend == EmbeddingBackend::kOneDnnInt8) tolerance = calibration->self_test_tolerance;
  RETURN_IF_ERROR(RunSelfTest(package, **net, &max_distance, tolerance));
  LoadedModel loaded;
  loaded.net = *std::move(net);
  loaded.manifest = std::move(package.manifest);
  loaded.self_test_max_distance = max_distance;
  return loaded;
}

}  // namespace fedface
