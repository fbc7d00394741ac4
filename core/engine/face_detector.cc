#include "core/engine/face_detector.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>
#include <dlib/opencv/cv_image.h>

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"

namespace fedface {
namespace {

class HogFaceDetector final : public FaceDetector {
 public:
  explicit HogFaceDetector(const DetectorOptions& options)
      : options_(options), detector_(dlib::get_frontal_face_detector()) {}

  std::vector<FaceBox> Detect(const cv::Mat& rgb) override {
    double scale = 1.0;
    cv::Mat work = rgb;
    const int longer = std::max(rgb.cols, rgb.rows);
    if (options_.max_side > 0 && longer > options_.max_side) {
      scale = static_cast<double>(options_.max_side) / longer;
      cv::resize(rgb, work, cv::Size(), scale, scale, cv::INTER_AREA);
    }
    std::vector<dlib::rect_detection> found;
    if (options_.grayscale) {
      cv::Mat gray;
      cv::cvtColor(work, gray, cv::COLOR_RGB2GRAY);
      dlib::array2d<unsigned char> img;
      dlib::assign_image(img, dlib::cv_image<unsigned char>(gray));
      found = Run(img);
    } else {
      dlib::array2d<dlib::rgb_pixel> img;
      dlib::assign_image(img, dlib::cv_image<dlib::rgb_pixel>(work));
      found = Run(img);
    }
    std::vector<FaceBox> boxes;
    boxes.reserve(found.size());
    for (const dlib::rect_detection& d : found) {
      FaceBox b;
      b.raw_left = std::lround(d.rect.left() / scale);
      b.raw_top = std::lround(d.rect.top() / scale);
      b.raw_right = std::lround(d.rect.right() / scale);
      b.raw_bottom = std::lround(d.rect.bottom() / scale);
      b.left = std::max(b.raw_left, 0L);
      b.top = std::max(b.raw_top, 0L);
      b.right = std::min<long>(b.raw_right, rgb.cols);
      b.bottom = std::min<long>(b.raw_bottom, rgb.rows);
      b.confidence = d.detection_confidence;
      boxes.push_back(b);
    }
    return boxes;
  }

 private:
  template <typename Image>
  std::vector<dlib::rect_detection> Run(Image& img) {
    // dlib's C++ detector(img, x) takes an adjust_threshold, not an upsample count: upsample
    // ourselves like face_recognition (pyramid_up, detect, map back with rect_down).
    for (int i = 0; i < options_.upsample; ++i) dlib::pyramid_up(img);
    std::vector<dlib::rect_detection> found;
    detector_(img, found, 0.0);
    if (options_.upsample > 0) {
      dlib::pyramid_down<2> pyr;
      for (auto& d : found) d.rect = pyr.rect_down(d.rect, options_.upsample);
    }
    return found;
  }

  DetectorOptions options_;
  dlib::frontal_face_detector detector_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FaceDetector>> MakeHogFaceDetector(const DetectorOptions& options) {
  if (options.upsample < 0 || options.upsample > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("upsample must be 0..4, got ", options.upsample));
  }
  if (options.max_side < 0) return absl::InvalidArgumentError("max_side must be >= 0");
  return std::make_unique<HogFaceDetector>(options);
}

}  // namespace fedface
