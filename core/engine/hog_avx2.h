// dlib's frontal face detector (HOG), compiled a second time for AVX2 + FMA (about 1.5x faster
// than the baseline x86-64 build of the same code), used only on CPUs that have both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fedface {

// A detection in the scanned image's pixels (dlib's rectangle, right/bottom inclusive).
struct HogDetection {
  long left = 0, top = 0, right = 0, bottom = 0;
  double confidence = 0;
};

class HogScanner {
 public:
  virtual ~HogScanner() = default;
  // dlib's frontal_face_detector(img, detections, 0.0) on an 8-bit grayscale image, no upsampling.
  // Not thread-safe: one scanner per detector.
  virtual std::vector<HogDetection> Scan(const uint8_t* gray, int rows, int cols,
                                         size_t stride) = 0;
};

// `detector` is dlib::serialize of the baseline build's frontal_face_detector (dlib's own
// get_frontal_face_detector() decompresses its model with code only libdlib has, for the
// baseline). Null when this CPU lacks AVX2 or FMA (the caller then runs the baseline build).
std::unique_ptr<HogScanner> MakeAvx2HogScanner(const std::string& detector);

}  // namespace fedface
