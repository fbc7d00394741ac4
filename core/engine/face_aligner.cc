#include "core/engine/face_aligner.h"

#include <dlib/image_processing.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/engine/embedding.h"
#include "core/engine/shape_cascade.h"

namespace fedface {

struct FaceAligner::Impl {
  ShapeCascade predictor;  // dlib's shape_predictor, same landmarks, faster (shape_cascade.h)
};

std::string DefaultLandmarkModelPath() { return FEDFACE_LANDMARK_MODEL; }

FaceAligner::FaceAligner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaceAligner::~FaceAligner() = default;

absl::StatusOr<std::unique_ptr<FaceAligner>> FaceAligner::Load(const std::string& model_path) {
  if (!std::filesystem::is_regular_file(model_path)) {
    return absl::NotFoundError(
        absl::StrCat(model_path, ": landmark model missing (install Debian's libdlib-data)"));
  }
  auto impl = std::make_unique<Impl>();
  try {
    std::ifstream in(model_path, std::ios::binary);
    impl->predictor.Deserialize(in);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": not a dlib shape predictor: ", e.what()));
  }
  if (impl->predictor.num_parts() != 68) {
    return absl::InvalidArgumentError(
        absl::StrCat(model_path, ": expected 68 landmarks, has ", impl->predictor.num_parts()));
  }
  return std::unique_ptr<FaceAligner>(new FaceAligner(std::move(impl)));
}

namespace {

dlib::full_object_detection ToShape(const Landmarks& landmarks, const cv::Mat& rgb) {
  std::vector<dlib::point> parts;
  parts.reserve(landmarks.size());
  for (const cv::Point& p : landmarks) parts.emplace_back(p.x, p.y);
  return dlib::full_object_detection(dlib::rectangle(0, 0, rgb.cols - 1, rgb.rows - 1), parts);
}

}  // namespace

Landmarks FaceAligner::FindLandmarks(const cv::Mat& rgb, const FaceBox& box) const {
  const std::vector<cv::Point> parts =
      impl_->predictor.Predict(rgb, box.raw_left, box.raw_top, box.raw_right, box.raw_bottom);
  Landmarks out;
  std::copy_n(parts.begin(), std::min(parts.size(), out.size()), out.begin());
  return out;
}

cv::Mat FaceAligner::ExtractChip(const cv::Mat& rgb, const Landmarks& landmarks) const {
  const dlib::cv_image<dlib::rgb_pixel> img(rgb);
  dlib::matrix<dlib::rgb_pixel> chip;
  dlib::extract_image_chip(
      img, dlib::get_face_chip_details(ToShape(landmarks, rgb), kChipSize, 0.25), chip);
  cv::Mat out(kChipSize, kChipSize, CV_8UC3);
  for (int r = 0; r < kChipSize; ++r) {
    uint8_t* row = out.ptr<uint8_t>(r);
    for (int c = 0; c < kChipSize; ++c) {
      row[3 * c] = chip(r, c).red;
      row[3 * c + 1] = chip(r, c).green;
      row[3 * c + 2] = chip(r, c).blue;
    }
  }
  return out;
}

}  // namespace fedface
