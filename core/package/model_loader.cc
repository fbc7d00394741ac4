// LoadVerifiedModel: the only path from a package folder to a usable network. Kept apart from
// package_verifier.cc because it links the engine (MakeEmbeddingNetwork).
#include "absl/strings/str_cat.h"
#include "core/package/package_verifier.h"

namespace fedface {

absl::StatusOr<LoadedModel> LoadVerifiedModel(const std::string& dir,
                                              const Ed25519PublicKey& pinned_key,
                                              EmbeddingBackend backend) {
  auto package = VerifyModelPackage(dir, pinned_key);
  if (!package.ok()) return package.status();
  auto net = MakeEmbeddingNetwork(package->weights, backend);
  if (!net.ok()) {
    return absl::Status(net.status().code(),
                        absl::StrCat(dir, "/", kWeightsFile, ": ", net.status().message()));
  }
  float max_distance = 0.f;
  if (absl::Status st = RunSelfTest(*package, **net, &max_distance); !st.ok()) return st;
  LoadedModel loaded;
  loaded.net = *std::move(net);
  loaded.manifest = std::move(package->manifest);
  loaded.self_test_max_distance = max_distance;
  return loaded;
}

}  // namespace fedface
