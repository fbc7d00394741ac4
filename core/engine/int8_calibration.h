// The int8 backend's activation scales: computed by the vendor at packaging time from calibration
// chips (the largest activation each quantized tensor reached, over 255) and carried in the
// signed manifest (model_manifest.h, "int8_calibration"). They decide how the partner's own
// computation is quantized, so the partner checks them before use: the count is the
// architecture's, every scale finite and within [kMinInt8ActivationScale,
// kMaxInt8ActivationScale]. Crafted scales can only saturate or zero the vendor's own
// descriptors (the self-test then refuses the package); they size nothing and index nothing.
#pragma once

#include <vector>

#include "absl/status/status.h"

namespace fedface {

// One scale per conv unit: the u8 tensor that unit's output feeds (after its ReLU, or after the
// residual sum that follows it).
inline constexpr int kInt8ActivationScaleCount = 29;
inline constexpr double kMinInt8ActivationScale = 1e-6;
inline constexpr double kMaxInt8ActivationScale = 1e3;
// int8 descriptors are not dlib's: the self-test allows this much at most (the vendor states its
// own, smaller, tolerance).
inline constexpr double kMaxInt8SelfTestTolerance = 0.1;
inline constexpr int kMaxInt8CalibrationChips = 100000;

struct Int8Calibration {
  std::vector<double> activation_scales;  // kInt8ActivationScaleCount
  int chips = 0;                          // how many calibration chips the vendor used
  double self_test_tolerance = 0.05;      // Euclidean, int8 embedding vs the packaged one
  bool operator==(const Int8Calibration&) const = default;
};

// InvalidArgument "<where>.<field>: ..." on a count, range or non-finite value the int8
// backend cannot use.
absl::Status ValidateInt8Calibration(const Int8Calibration& calibration, const char* where);

}  // namespace fedface
