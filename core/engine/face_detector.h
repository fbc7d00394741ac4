// Face detection behind a small interface, so faster detectors can replace dlib's HOG later.
#pragma once

#include <memory>
#include <vector>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"

namespace fedface {

// A detection in original-image pixels. `left/top/right/bottom` follow dlib's rectangle
// (right/bottom inclusive) clipped to the image as the face_recognition library does
// (left, top >= 0; right <= width; bottom <= height). raw_* is the unclipped rectangle, which the
// landmark model needs for faces that touch the border.
struct FaceBox {
  long left = 0, top = 0, right = 0, bottom = 0;
  long raw_left = 0, raw_top = 0, raw_right = 0, raw_bottom = 0;
  double confidence = 0;
  long Area() const { return (right - left) * (bottom - top); }
};

struct DetectorOptions {
  // face_recognition's meaning: enlarge the image this many times by 2x (pyramid_up), detect,
  // and map boxes back. Finds smaller faces; each step costs ~4x.
  int upsample = 1;
  // Detect on a grayscale copy (faster) instead of dlib's colour gradients (exactly what
  // face_recognition computes).
  bool grayscale = false;
  // When > 0, images whose longer side exceeds this are downscaled for detection only; boxes are
  // mapped back to original pixels.
  int max_side = 0;
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // REQUIRES: rgb is CV_8UC3 in RGB order. ENSURES: boxes in original pixels, in dlib's order.
  // Not thread-safe: one detector per worker.
  virtual std::vector<FaceBox> Detect(const cv::Mat& rgb) = 0;
};

// dlib's HOG frontal face detector. Fails on invalid options (upsample outside 0..4).
absl::StatusOr<std::unique_ptr<FaceDetector>> MakeHogFaceDetector(const DetectorOptions& options);

}  // namespace fedface
