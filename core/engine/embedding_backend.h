// The one seam through which every engine gets its embedding network: the model package's
// weights + a backend name. `dlib` is the reference (face_recognition's exact numbers); `onednn`
// runs the same network on oneDNN (fp32, descriptors within 1e-4 of dlib's); `onednn-int8` runs it
// with int8 convolutions, quantized with the vendor's signed calibration (int8_calibration.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/engine/face_resnet.h"
#include "core/engine/int8_calibration.h"

namespace fedface {

enum class EmbeddingBackend { kDlib, kOneDnn, kOneDnnInt8 };

// The default everywhere an engine is made (engine.backend, --backend): onednn's descriptors are
// within 1e-4 of dlib's (tests/unit/engine/embedding_backend_test.cc) at about 2.5x less CPU per
// face. dlib stays the reference: --backend dlib, and always with exact parity.
inline constexpr EmbeddingBackend kDefaultEmbeddingBackend = EmbeddingBackend::kOneDnn;

// The names the configuration (engine.backend) and --backend accept, e.g. "dlib | onednn".
std::string EmbeddingBackendNames();
std::string_view EmbeddingBackendName(EmbeddingBackend backend);

// InvalidArgument naming `key` (the config key or flag the value came from) and the accepted
// names when `name` is not one of them.
absl::StatusOr<EmbeddingBackend> ParseEmbeddingBackend(std::string_view name, std::string_view key);

// The network for `backend` from dlib-serialized `weights`. Both backends read the weights through
// FaceResNet's pre-walk and architecture check, so a package one backend refuses the other
// refuses too, with the same "weights..." message. `calibration` is the package's int8 section:
// onednn-int8 fails (FailedPrecondition) without one; the other backends ignore it.
absl::StatusOr<std::unique_ptr<FaceResNet>> MakeEmbeddingNetwork(
    std::string_view weights, EmbeddingBackend backend,
    const Int8Calibration* calibration = nullptr);

}  // namespace fedface
