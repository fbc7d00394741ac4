// 68-point landmarks (dlib's shape predictor from Debian's libdlib-data) and the aligned
// 150x150 chips that the embedding network expects.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"
#include "core/engine/face_detector.h"

namespace fedface {

using Landmarks = std::array<cv::Point, 68>;

// Default location of the 68-point model (package libdlib-data).
std::string DefaultLandmarkModelPath();

class FaceAligner {
 public:
  // Loads the shape predictor. Fails naming the file when it is missing or not a dlib model.
  static absl::StatusOr<std::unique_ptr<FaceAligner>> Load(const std::string& model_path);
  ~FaceAligner();

  // Landmarks of the face in `box` (its raw rectangle). REQUIRES: rgb CV_8UC3 RGB.
  // Thread-safe (the predictor is read-only).
  Landmarks FindLandmarks(const cv::Mat& rgb, const FaceBox& box) const;

  // The aligned chip: get_face_chip_details(shape, 150, 0.25) + extract_image_chip.
  // ENSURES: 150x150 CV_8UC3 RGB. Thread-safe.
  cv::Mat ExtractChip(const cv::Mat& rgb, const Landmarks& landmarks) const;

 private:
  struct Impl;
  explicit FaceAligner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedface
