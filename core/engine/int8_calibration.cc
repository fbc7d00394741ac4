#include "core/engine/int8_calibration.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedface {

absl::Status ValidateInt8Calibration(const Int8Calibration& c, const char* where) {
  auto error = [&](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", field, ": ", what));
  };
  if (c.activation_scales.size() != static_cast<size_t>(kInt8ActivationScaleCount)) {
    return error("activation_scales",
                 absl::StrCat(c.activation_scales.size(), " scales, the architecture needs ",
                              kInt8ActivationScaleCount));
  }
  for (size_t i = 0; i < c.activation_scales.size(); ++i) {
    const double s = c.activation_scales[i];
    // Written so that NaN fails too.
    if (!(std::isfinite(s) && s >= kMinInt8ActivationScale && s <= kMaxInt8ActivationScale)) {
      return error(absl::StrCat("activation_scales[", i, "]"),
                   absl::StrCat(s, " is not a finite number in [", kMinInt8ActivationScale, ", ",
                                kMaxInt8ActivationScale, "]"));
    }
  }
  if (c.chips < 1 || c.chips > kMaxInt8CalibrationChips) {
    return error("chips", absl::StrCat(c.chips, " is outside [1, ", kMaxInt8CalibrationChips, "]"));
  }
  if (!(c.self_test_tolerance > 0 && c.self_test_tolerance <= kMaxInt8SelfTestTolerance)) {
    return error("self_test_tolerance", absl::StrCat(c.self_test_tolerance, " is outside (0, ",
                                                     kMaxInt8SelfTestTolerance, "]"));
  }
  return absl::OkStatus();
}

}  // namespace fedface
