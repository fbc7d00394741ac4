// LoadVerifiedModel: the only path from a package folder to a usable network. Kept apart from
// package_verifier.cc because it links the engine (MakeEmbeddingNetwork).
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/package/package_verifier.h"

namespace fedface {

absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const Ed25519PublicKey& pinned_key,
                                              EmbeddingBackend backend) {
  ASSIGN_OR_RETURN(auto package, VerifyModelPackage(dir, pinned_key));
  auto net = MakeEmbeddingNetwork(package.weights, backend);
  if (!net.ok()) {
    return absl::Status(net.status().code(),
                        absl::StrCat(dir, "/", kWeightsFile, ": ", net.status().message()));
  }
  float max_distance = 0.f;
  RETURN_IF_ERROR(RunSelfTest(package, **net, &max_distance));
  LoadedModel loaded;
  loaded.net = *std::move(net);
  loaded.manifest = std::move(package.manifest);
  loaded.self_test_max_distance = max_distance;
  return loaded;
}

}  // namespace fedface
