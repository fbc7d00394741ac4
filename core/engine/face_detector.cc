#include "core/engine/face_detector.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_transforms.h>
#include <dlib/opencv/cv_image.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/engine/hog_avx2.h"

namespace fedface {
namespace {

// Side of the smallest box dlib's frontal detector reports at scale 1 (its 80x80 window).
constexpr double kFastWindowPx = 80.0;
// Faces smaller than the window are found by enlarging, at most this much.
constexpr double kMaxFastUpscale = 4.0;
// The fast detector never shrinks a photo below about this many pixels (~35 ms of HOG).
constexpr double kFastMinDetectionPixels = 500'000;
// Photos this small are detected exactly as face_recognition does (colour, upsample 1): it costs
// no more than the fast path on a large photo.
constexpr double kExactBelowPixels = 100'000;

// dlib's frontal face detector, serialized once for the AVX2 build to read (hog_avx2.h).
const std::string& SerializedDetector() {
  static const std::string bytes = [] {
    std::ostringstream out;
    dlib::serialize(dlib::get_frontal_face_detector(), out);
    return out.str();
  }();
  return bytes;
}

class HogFaceDetector final : public FaceDetector {
 public:
  explicit HogFaceDetector(const DetectorOptions& options)
      : options_(options), detector_(dlib::get_frontal_face_detector()) {
    if (options_.min_face_px > 0 && options_.avx2) avx2_ = MakeAvx2HogScanner(SerializedDetector());
  }

  std::vector<FaceBox> Detect(const cv::Mat& rgb) override {
    if (options_.min_face_px > 0) return DetectFast(rgb);
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
      found = RunGray(gray, options_.upsample);
    } else {
      dlib::array2d<dlib::rgb_pixel> img;
      dlib::assign_image(img, dlib::cv_image<dlib::rgb_pixel>(work));
      found = Run(img, options_.upsample);
    }
    return ToBoxes(found, scale, rgb);
  }

 private:
  // Grayscale at the scale where a min_face_px face fills the detection window, upsample 0: the
  // pyramid's cost is in its largest level, so this is what makes the default fast. Smaller
  // photos cost little at any scale, so they are detected closer to full resolution (finding
  // smaller faces), and the smallest exactly as face_recognition does.
  std::vector<FaceBox> DetectFast(const cv::Mat& rgb) {
    const double pixels = static_cast<double>(rgb.cols) * rgb.rows;
    if (pixels <= kExactBelowPixels) {
      dlib::array2d<dlib::rgb_pixel> img;
      dlib::assign_image(img, dlib::cv_image<dlib::rgb_pixel>(rgb));
      return ToBoxes(Run(img, 1), 1.0, rgb);
    }
    const double scale = FastDetectionScale(options_.min_face_px, rgb.cols, rgb.rows);
    cv::Mat gray;
    cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
    if (scale != 1.0) {
      cv::Mat scaled;
      cv::resize(gray, scaled, cv::Size(), scale, scale,
                 scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
      gray = scaled;
    }
    if (avx2_ == nullptr) return ToBoxes(RunGray(gray, 0), scale, rgb);
    std::vector<dlib::rect_detection> found;
    for (const HogDetection& d : avx2_->Scan(gray.data, gray.rows, gray.cols, gray.step[0])) {
      found.push_back({d.confidence, 0, dlib::rectangle(d.left, d.top, d.right, d.bottom)});
    }
    return ToBoxes(found, scale, rgb);
  }

  std::vector<dlib::rect_detection> RunGray(const cv::Mat& gray, int upsample) {
    dlib::array2d<unsigned char> img;
    dlib::assign_image(img, dlib::cv_image<unsigned char>(gray));
    return Run(img, upsample);
  }

  // Detections at `scale` mapped back to the pixels of `rgb`.
  static std::vector<FaceBox> ToBoxes(const std::vector<dlib::rect_detection>& found, double scale,
                                      const cv::Mat& rgb) {
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

  template <typename Image>
  std::vector<dlib::rect_detection> Run(Image& img, int upsample) {
    // dlib's C++ detector(img, x) takes an adjust_threshold, not an upsample count: upsample
    // ourselves like face_recognition (pyramid_up, detect, map back with rect_down).
    for (int i = 0; i < upsample; ++i) dlib::pyramid_up(img);
    std::vector<dlib::rect_detection> found;
    detector_(img, found, 0.0);
    if (upsample > 0) {
      dlib::pyramid_down<2> pyr;
      for (auto& d : found) d.rect = pyr.rect_down(d.rect, upsample);
    }
    return found;
  }

  DetectorOptions options_;
  dlib::frontal_face_detector detector_;
  std::unique_ptr<HogScanner> avx2_;  // null: the baseline build (detector_)
};

}  // namespace

double FastDetectionScale(int min_face_px, int width, int height) {
  const double pixels = static_cast<double>(width) * height;
  const double keep = pixels > 0 ? std::min(1.0, std::sqrt(kFastMinDetectionPixels / pixels)) : 1;
  return std::min(kMaxFastUpscale, std::max(kFastWindowPx / min_face_px, keep));
}

DetectorOptions FastDetectorOptions() {
  DetectorOptions options;
  options.min_face_px = kDefaultMinFacePx;
  return options;
}

absl::StatusOr<std::unique_ptr<FaceDetector>> MakeHogFaceDetector(const DetectorOptions& options) {
  if (options.upsample < 0 || options.upsample > 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("upsample must be 0..4, got ", options.upsample));
  }
  if (options.max_side < 0) return absl::InvalidArgumentError("max_side must be >= 0");
  if (options.min_face_px != 0 && (options.min_face_px < 20 || options.min_face_px > 4096)) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_face_px must be 0 (off) or 20..4096, got ", options.min_face_px));
  }
  return std::make_unique<HogFaceDetector>(options);
}

}  // namespace fedface
