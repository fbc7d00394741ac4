#include "bench/pipeline_stages.h"

#include <time.h>

#include <algorithm>
#include <functional>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/common/files.h"
#include "core/engine/face_aligner.h"
#include "core/engine/face_detector.h"
#include "core/engine/image_decoder.h"

namespace fedface {
namespace {

double ThreadCpuMs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

// Median over `repeat` runs of the CPU ms per photo of `stage(i)` over every photo i.
double MedianMsPerPhoto(size_t photos, int repeat, const std::function<void(size_t)>& stage) {
  std::vector<double> runs;
  for (int r = 0; r < std::max(repeat, 1); ++r) {
    const double start = ThreadCpuMs();
    for (size_t i = 0; i < photos; ++i) stage(i);
    runs.push_back((ThreadCpuMs() - start) / photos);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

cv::Mat Raw(const std::string& bytes) {
  return cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
}

}  // namespace

nlohmann::json PipelineStageCpuMs(const std::vector<std::string>& photos, int repeat,
                                  const std::map<std::string, FaceResNet*>& nets) {
  const size_t n = photos.size();
  std::vector<std::string> bytes(n);
  std::vector<cv::Mat> rgb(n), gray(n);
  std::vector<std::vector<FaceBox>> boxes(n);
  std::vector<std::vector<Landmarks>> marks(n);
  std::vector<std::vector<cv::Mat>> chips(n);
  const DetectorOptions fast = FastDetectorOptions();
  auto detector = MakeHogFaceDetector(fast);
  auto aligner = FaceAligner::Load(DefaultLandmarkModelPath());
  if (!detector.ok() || !aligner.ok()) return {{"error", "no detector or landmark model"}};
  nlohmann::json out;
  out["read"] = MedianMsPerPhoto(n, repeat, [&](size_t i) { bytes[i] = *ReadFile(photos[i]); });
  // The product's decoder (header checks, imdecode, BGR -> RGB) and its parts.
  out["decode"] = MedianMsPerPhoto(n, repeat, [&](size_t i) { rgb[i] = *DecodeImage(bytes[i]); });
  cv::Mat scratch;
  out["decode_imdecode_only"] = MedianMsPerPhoto(
      n, repeat, [&](size_t i) { scratch = cv::imdecode(Raw(bytes[i]), cv::IMREAD_COLOR); });
  out["decode_bgr_to_rgb"] = MedianMsPerPhoto(
      n, repeat, [&](size_t i) { cv::cvtColor(rgb[i], scratch, cv::COLOR_BGR2RGB); });
  // The detector's copy: from the decoded image, or a second, reduced decode by libjpeg.
  const double scale = FastDetectionScale(fast.min_face_px, rgb[0].cols, rgb[0].rows);
  out["detection_scale"] = scale;
  out["gray_and_resize"] = MedianMsPerPhoto(n, repeat, [&](size_t i) {
    cv::Mat g;
    cv::cvtColor(rgb[i], g, cv::COLOR_RGB2GRAY);
    cv::resize(g, gray[i], cv::Size(), scale, scale, cv::INTER_AREA);
  });
  out["decode_reduced_grayscale_2"] = MedianMsPerPhoto(n, repeat, [&](size_t i) {
    scratch = cv::imdecode(Raw(bytes[i]), cv::IMREAD_REDUCED_GRAYSCALE_2);
  });
  out["detect_total"] =
      MedianMsPerPhoto(n, repeat, [&](size_t i) { boxes[i] = (*detector)->Detect(rgb[i]); });
  out["hog"] = out["detect_total"].get<double>() - out["gray_and_resize"].get<double>();
  DetectorOptions baseline = fast;  // the same scan, built for baseline x86-64
  baseline.avx2 = false;
  auto baseline_detector = MakeHogFaceDetector(baseline);
  out["detect_total_baseline_build"] =
      MedianMsPerPhoto(n, repeat, [&](size_t i) { (void)(*baseline_detector)->Detect(rgb[i]); });
  size_t faces = 0;
  for (const auto& b : boxes) faces += b.size();
  out["faces_per_photo"] = double(faces) / n;
  out["landmarks"] = MedianMsPerPhoto(n, repeat, [&](size_t i) {
    marks[i].clear();
    for (const FaceBox& b : boxes[i]) marks[i].push_back((*aligner)->FindLandmarks(rgb[i], b));
  });
  out["chips"] = MedianMsPerPhoto(n, repeat, [&](size_t i) {
    chips[i].clear();
    for (const Landmarks& m : marks[i]) chips[i].push_back((*aligner)->ExtractChip(rgb[i], m));
  });
  std::vector<cv::Mat> all;
  for (const auto& c : chips) all.insert(all.end(), c.begin(), c.end());
  for (const auto& [name, net] : nets) {
    for (size_t i = 0; i < n; ++i) (void)net->Embed(chips[i]);  // warm-up: batch shapes
    out["embed_" + name] = MedianMsPerPhoto(n, repeat, [&](size_t i) {
      if (!chips[i].empty()) (void)net->Embed(chips[i]);
    });
    // What batching across photos would save: CPU ms per face by batch size.
    for (size_t batch : {1, 3, 16}) {
      std::vector<cv::Mat> b;
      for (size_t i = 0; i < batch; ++i) b.push_back(all[i % all.size()]);
      (void)net->Embed(b);
      out["embed_" + name + "_ms_per_face_by_batch"][std::to_string(batch)] =
          MedianMsPerPhoto(1, repeat, [&](size_t) { (void)net->Embed(b); }) / batch;
    }
  }
  return out;
}

}  // namespace fedface
