// Face detection behind a small interface, so faster detectors can replace dlib's HOG later.
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <vector>

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

// The smallest face (box side in pixels of the original photo, as the slow path measures it) that
// the fast default detector is meant to find: every face the face_recognition-parity path finds at
// this size or larger (tests/unit/engine/detector_recall_test.cc).
inline constexpr int kDefaultMinFacePx = 160;

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
  // When > 0, the fast detector: HOG on a grayscale copy rescaled so that a face of this many
  // pixels (box side in the original photo) fills dlib's detection window, without upsampling
  // (see FastDetectionScale); upsample, grayscale and max_side are then ignored. 0: the options
  // above, whose defaults are exactly face_recognition's detector.
  int min_face_px = 0;
  // With min_face_px: scan with the AVX2 + FMA build of the detector (hog_avx2.h) when the CPU
  // has both. Its scores differ from the baseline build's in the last bits (fused multiply-adds),
  // so a box can differ where a score sits at the threshold; false keeps the baseline.
  bool avx2 = true;
};

class FaceDetector {
 public:
  virtual ~FaceDetector() = default;
  // REQUIRES: rgb is CV_8UC3 in RGB order. ENSURES: boxes in original pixels, in dlib's order.
  // Not thread-safe: one detector per worker.
  virtual std::vector<FaceBox> Detect(const cv::Mat& rgb) = 0;
};

// The fast default: DetectorOptions with min_face_px = kDefaultMinFacePx.
DetectorOptions FastDetectorOptions();

// The scale at which the fast detector runs HOG on a width x height photo (above 100,000 pixels;
// smaller photos get face_recognition's exact detector): the larger of 80 / min_face_px (a face of
// min_face_px fills the 80-pixel window) and the scale that keeps about 500,000 pixels, never
// above 1 for the latter. Faces of 80 / scale pixels and larger are within reach.
double FastDetectionScale(int min_face_px, int width, int height);

// dlib's HOG frontal face detector. Fails on invalid options (upsample outside 0..4).
absl::StatusOr<std::unique_ptr<FaceDetector>> MakeHogFaceDetector(const DetectorOptions& options);

}  // namespace fedface
