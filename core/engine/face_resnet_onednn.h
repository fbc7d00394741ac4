// The face ResNet on oneDNN: fp32 (the same network as the dlib backend, with each scale layer
// folded into the convolution before it, convolutions run by oneDNN and the cheap layers (pooling,
// the zero-padded residual adds of the down-sampling blocks, the final fc) in plain loops) and
// int8 (the same plan with u8 activations and s8 weights, face_resnet_onednn_int8.cc).
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/face_resnet.h"
#include "core/engine/int8_calibration.h"

namespace fedface {

// Builds the network from parameters FaceResNet::CheckedParameters accepted. Checks again every
// tensor's size against this file's own table of the architecture (it indexes by those sizes)
// and fails with one line starting "weights (onednn)" naming the unit on any mismatch.
absl::StatusOr<std::unique_ptr<FaceResNet>> MakeOneDnnFaceResNet(
    const FaceResNetParameters& params);

// The int8 network: s8 weights with one scale per output channel (from the weights), u8
// activations with the calibration's scales. Refuses a calibration ValidateInt8Calibration
// refuses, and scales whose products are not finite, naming the unit; FailedPrecondition on a CPU
// without VNNI (oneDNN's int8 fallback is not accurate for this network).
absl::StatusOr<std::unique_ptr<FaceResNet>> MakeOneDnnInt8FaceResNet(
    const FaceResNetParameters& params, const Int8Calibration& calibration);

// The vendor's packaging step: runs the fp32 network over `chips` (1 to
// kMaxInt8CalibrationChips, kChipSize x kChipSize CV_8UC3 RGB) and answers, per unit, the largest
// activation seen over 255. `chips` and self_test_tolerance are left for the caller to fill.
absl::StatusOr<Int8Calibration> ComputeInt8Calibration(const FaceResNetParameters& params,
                                                       const std::vector<cv::Mat>& chips);

}  // namespace fedface
