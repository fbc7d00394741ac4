#include "core/engine/embedding_backend.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/engine/face_resnet_onednn.h"

namespace fedface {
namespace {

constexpr std::pair<EmbeddingBackend, std::string_view> kNames[] = {
    {EmbeddingBackend::kDlib, "dlib"},
    {EmbeddingBackend::kOneDnn, "onednn"},
    {EmbeddingBackend::kOneDnnInt8, "onednn-int8"}};

}  // namespace

std::string EmbeddingBackendNames() {
  std::string out;
  for (const auto& [backend, name] : kNames)
    absl::StrAppend(&out, out.empty() ? "" : " | ", std::string(name));
  return out;
}

std::string_view EmbeddingBackendName(EmbeddingBackend backend) {
  for (const auto& [b, name] : kNames) {
    if (b == backend) return name;
  }
  return "?";
}

absl::StatusOr<EmbeddingBackend> ParseEmbeddingBackend(std::string_view name,
                                                       std::string_view key) {
  for (const auto& [backend, known] : kNames) {
    if (name == known) return backend;
  }
  return absl::InvalidArgumentError(absl::StrCat(std::string(key), ": unknown embedding backend '",
                                                 std::string(name), "' (expected ",
                                                 EmbeddingBackendNames(), ")"));
}

absl::StatusOr<std::unique_ptr<FaceResNet>> MakeEmbeddingNetwork(
    std::string_view weights, EmbeddingBackend backend, const Int8Calibration* calibration) {
  switch (backend) {
    case EmbeddingBackend::kDlib:
      return FaceResNet::FromSerialized(weights);
    case EmbeddingBackend::kOneDnn: {
      ASSIGN_OR_RETURN(FaceResNetParameters params, FaceResNet::CheckedParameters(weights));
      return MakeOneDnnFaceResNet(params);
    }
    case EmbeddingBackend::kOneDnnInt8: {
      if (calibration == nullptr) {
        return absl::FailedPreconditionError(
            "backend onednn-int8: the package has no int8 calibration (manifest "
            "\"int8_calibration\"); repackage it with this model_vendor, or use backend onednn");
      }
      ASSIGN_OR_RETURN(FaceResNetParameters params, FaceResNet::CheckedParameters(weights));
      return MakeOneDnnInt8FaceResNet(params, *calibration);
    }
  }
  return absl::InternalError("unknown embedding backend");
}

}  // namespace fedface
