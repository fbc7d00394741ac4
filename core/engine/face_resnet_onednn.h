// The face ResNet on oneDNN (fp32): the same network as the dlib backend, with each scale layer
// folded into the convolution before it, convolutions run by oneDNN and the cheap layers (pooling,
// the zero-padded residual adds of the down-sampling blocks, the final fc) in plain loops.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "core/engine/face_resnet.h"

namespace fedface {

// Builds the network from parameters FaceResNet::CheckedParameters accepted. Checks again every
// tensor's size against this file's own table of the architecture (it indexes by those sizes)
// and fails with one line starting "weights (onednn)" naming the unit on any mismatch.
absl::StatusOr<std::unique_ptr<FaceResNet>> MakeOneDnnFaceResNet(
    const FaceResNetParameters& params);

}  // namespace fedface
