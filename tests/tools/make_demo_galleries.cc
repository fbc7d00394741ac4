// make_demo_galleries: builds partner galleries from photos of real people.
//
// Every face detected in the input photos becomes a subject; each subject gets several
// SYNTHETIC captures made from its one real face by realistic geometric changes (rotation,
// scale, shift, mirror) and photometric ones (exposure, contrast, gamma, colour cast, blur,
// sensor noise, JPEG re-compression). Subjects are dealt round-robin to N partners:
//   OUT/<partner>/<subject>/<capture>.jpg
// With --canaries FILE, unique random tokens are planted in every image (a JPEG comment
// segment), in every subject folder name and in every file name, and written to FILE, one per
// line, so a traffic audit can prove none of them ever left a partner.
//
// usage: make_demo_galleries --out DIR --partners A,B,C [--captures N] [--seed S]
//                            [--canaries FILE] PHOTO...
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_split.h"
#include "core/common/cli_args.h"
#include "core/engine/face_detector.h"
#include "core/engine/image_decoder.h"

namespace fedface {
namespace {

std::string RandomToken(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string token = "cnry";
  for (int i = 0; i < 20; ++i) token += kAlphabet[rng() % 36];
  return token;
}

// A crop around the face, twice the box, so rotations and shifts keep real background.
cv::Mat FaceCrop(const cv::Mat& rgb, const FaceBox& box) {
  const int w = box.right - box.left, h = box.bottom - box.top;
  cv::Rect r(box.left - w / 2, box.top - h / 2, 2 * w, 2 * h);
  r &= cv::Rect(0, 0, rgb.cols, rgb.rows);
  return rgb(r).clone();
}

// One synthetic capture of `face` (RGB). Capture 0 is the real crop, unchanged.
cv::Mat Capture(const cv::Mat& face, int index, std::mt19937_64& rng) {
  if (index == 0) return face.clone();
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const cv::Point2f centre(face.cols / 2.f, face.rows / 2.f);
  cv::Mat m = cv::getRotationMatrix2D(centre, 10 * u(rng), 1.0 + 0.12 * u(rng));
  m.at<double>(0, 2) += 0.05 * face.cols * u(rng);
  m.at<double>(1, 2) += 0.05 * face.rows * u(rng);
  cv::Mat out;
  cv::warpAffine(face, out, m, face.size(), cv::INTER_LINEAR, cv::BORDER_REFLECT);
  if (index % 3 == 2) cv::flip(out, out, 1);
  // Exposure, contrast and colour cast per channel, then gamma.
  cv::Mat f;
  out.convertTo(f, CV_32FC3, 1 / 255.0);
  const double contrast = 1.0 + 0.25 * u(rng), exposure = 0.12 * u(rng);
  const cv::Scalar cast(1 + 0.06 * u(rng), 1 + 0.06 * u(rng), 1 + 0.06 * u(rng));
  f.convertTo(f, -1, contrast, 0.5 - 0.5 * contrast + exposure);
  cv::multiply(f, cast, f);
  cv::max(f, 0.0, f);
  cv::min(f, 1.0, f);
  cv::pow(f, 1.0 + 0.3 * u(rng), f);
  if (index % 2 == 1) cv::GaussianBlur(f, f, cv::Size(0, 0), 0.6 + 0.8 * std::abs(u(rng)));
  cv::Mat noise(f.size(), CV_32FC3);
  cv::randn(noise, 0, 0.015);
  f += noise;
  f.convertTo(out, CV_8UC3, 255.0);
  return out;
}

// JPEG bytes with a comment segment (COM, FF FE) carrying `comment` right after SOI.
std::string JpegWithComment(const cv::Mat& rgb, int quality, const std::string& comment) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uchar> buf;
  cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  std::string jpeg(buf.begin(), buf.end());
  if (comment.empty()) return jpeg;
  const size_t len = comment.size() + 2;
  std::string segment = "\xFF\xFE";
  segment += static_cast<char>(len >> 8);
  segment += static_cast<char>(len & 0xFF);
  return jpeg.substr(0, 2) + segment + comment + jpeg.substr(2);
}

}  // namespace
}  // namespace fedface

int main(int argc, char** argv) {
  using namespace fedface;
  auto args = CliArgs::Parse({argv + 1, argv + argc},
                             {"out", "partners", "captures", "seed", "canaries"}, {"help"});
  if (!args.ok() || args->Has("help") || !args->Has("out") || !args->Has("partners") ||
      args->positionals().empty()) {
    std::cerr << "usage: make_demo_galleries --out DIR --partners A,B,C [--captures N] [--seed S] "
                 "[--canaries FILE] PHOTO...\n";
    return 2;
  }
  const std::vector<std::string> partners = absl::StrSplit(*args->Get("partners"), ',');
  const int captures = static_cast<int>(args->GetInt("captures", 5, 2, 50).value_or(5));
  std::mt19937_64 rng(static_cast<uint64_t>(args->GetInt("seed", 7, 0, 1L << 40).value_or(7)));
  std::random_device entropy;
  std::mt19937_64 canary_rng((uint64_t(entropy()) << 32) | entropy());
  const bool canaries = args->Has("canaries");
  std::set<std::string> tokens;

  DetectorOptions detector_options;
  detector_options.upsample = 1;
  size_t subject_index = 0, files = 0;
  for (const std::string& photo : args->positionals()) {
    absl::StatusOr<cv::Mat> rgb = DecodeImageFile(photo);
    if (!rgb.ok()) {
      std::cerr << "make_demo_galleries: " << rgb.status().message() << "\n";
      return 1;
    }
    const std::string stem = std::filesystem::path(photo).stem().string();
    auto detector = MakeHogFaceDetector(detector_options);
    int face_no = 0;
    for (const FaceBox& box : (*detector)->Detect(*rgb)) {
      const std::string partner = partners[subject_index++ % partners.size()];
      std::string subject = "synthetic-" + stem + "-face" + std::to_string(++face_no);
      if (canaries) {
        const std::string t = RandomToken(canary_rng);
        tokens.insert(t);
        subject += "-" + t;
      }
      const std::filesystem::path dir = std::filesystem::path(*args->Get("out")) / partner / subject;
      std::filesystem::create_directories(dir);
      const cv::Mat face = FaceCrop(*rgb, box);
      for (int c = 0; c < captures; ++c) {
        std::string name = "capture" + std::to_string(c);
        std::string comment;
        if (canaries) {
          const std::string file_token = RandomToken(canary_rng);
          comment = RandomToken(canary_rng);
          tokens.insert(file_token);
          tokens.insert(comment);
          name += "-" + file_token;
        }
        const int quality = 70 + static_cast<int>(rng() % 26);
        std::ofstream(dir / (name + ".jpg"), std::ios::binary)
            << JpegWithComment(Capture(face, c, rng), quality, comment);
        ++files;
      }
    }
  }
  if (canaries) {
    std::ofstream out(*args->Get("canaries"));
    for (const std::string& t : tokens) out << t << "\n";
  }
  std::cout << "make_demo_galleries: " << subject_index << " subjects (real faces), " << files
            << " images (capture0 real crop, others SYNTHETIC variations) across "
            << partners.size() << " partners in " << *args->Get("out") << "\n";
  return 0;
}
