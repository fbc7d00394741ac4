// Decoding: formats, EXIF orientation, colour conversions, and every kind of bad input.
#include "core/engine/image_decoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/engine/image_header.h"
#include "core/engine/jpeg_rgb_decoder.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

// A 40x20 picture whose left half is red and right half blue (RGB), so orientation is visible.
cv::Mat TwoToneRgb() {
  cv::Mat rgb(20, 40, CV_8UC3, cv::Scalar(255, 0, 0));
  rgb(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(0, 0, 255));
  return rgb;
}

std::string Encode(const cv::Mat& rgb_or_gray, const std::string& ext,
                   const std::vector<int>& params = {}) {
  cv::Mat bgr;  // a fresh buffer: converting into a Mat that shares the input would alter it
  if (rgb_or_gray.channels() == 3) {
    cv::cvtColor(rgb_or_gray, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = rgb_or_gray;
  }
  std::vector<uchar> buf;
  EXPECT_TRUE(cv::imencode(ext, bgr, buf, params)) << ext;
  return std::string(buf.begin(), buf.end());
}

// Inserts an APP1 Exif segment with one Orientation entry right after the JPEG's SOI marker.
std::string WithExifOrientation(const std::string& jpeg, uint16_t orientation) {
  std::string tiff = std::string("MM\0*\0\0\0\x08", 8);  // big-endian TIFF, IFD at offset 8
  tiff += std::string("\0\x01", 2);                      // one entry
  tiff += std::string("\x01\x12\0\x03\0\0\0\x01", 8);    // tag 0x0112, SHORT, count 1
  tiff += static_cast<char>(orientation >> 8);
  tiff += static_cast<char>(orientation & 0xFF);
  tiff += std::string("\0\0", 2);
  tiff += std::string("\0\0\0\0", 4);  // no next IFD
  std::string payload = std::string("Exif\0\0", 6) + tiff;
  const uint16_t len = static_cast<uint16_t>(payload.size() + 2);
  std::string segment = "\xFF\xE1";
  segment += static_cast<char>(len >> 8);
  segment += static_cast<char>(len & 0xFF);
  return jpeg.substr(0, 2) + segment + payload + jpeg.substr(2);
}

cv::Vec3b Pixel(const cv::Mat& m, int x, int y) { return m.at<cv::Vec3b>(y, x); }

TEST(ImageDecoderTest, DecodesEveryListedFormatToRgb) {
  const cv::Mat rgb = TwoToneRgb();
  for (const std::string ext : {".png", ".bmp", ".tiff", ".webp", ".jpg"}) {
    std::vector<int> params;
    if (ext == ".webp") params = {cv::IMWRITE_WEBP_QUALITY, 101};  // lossless
    absl::StatusOr<cv::Mat> out = DecodeImage(Encode(rgb, ext, params));
    ASSERT_TRUE(out.ok()) << ext << ": " << out.status();
    EXPECT_EQ(out->size(), rgb.size()) << ext;
    EXPECT_EQ(out->type(), CV_8UC3) << ext;
    EXPECT_GT(Pixel(*out, 5, 10)[0], 200) << ext << " red channel first";
    EXPECT_GT(Pixel(*out, 35, 10)[2], 200) << ext << " blue channel last";
  }
}

TEST(ImageDecoderTest, AppliesExifOrientation) {
  const std::string jpeg = Encode(TwoToneRgb(), ".jpg", {cv::IMWRITE_JPEG_QUALITY, 95});
  absl::StatusOr<cv::Mat> rotated = DecodeImage(WithExifOrientation(jpeg, 6));  // 90° clockwise
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(rotated->cols, 20);
  EXPECT_EQ(rotated->rows, 40);
  // After a clockwise turn the red (left) half is on top.
  EXPECT_GT(Pixel(*rotated, 10, 5)[0], 200);
  EXPECT_GT(Pixel(*rotated, 10, 35)[2], 200);
}

TEST(ImageDecoderTest, GrayRgbaAndSixteenBitBecomeEightBitRgb) {
  cv::Mat gray(10, 12, CV_8UC1, cv::Scalar(77));
  absl::StatusOr<cv::Mat> g = DecodeImage(Encode(gray, ".png"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->type(), CV_8UC3);
  EXPECT_EQ(Pixel(*g, 3, 3), cv::Vec3b(77, 77, 77));

  cv::Mat bgra(10, 12, CV_8UC4, cv::Scalar(10, 20, 30, 0));  // fully transparent
  std::vector<uchar> buf;
  ASSERT_TRUE(cv::imencode(".png", bgra, buf));
  absl::StatusOr<cv::Mat> rgba = DecodeImage(std::string(buf.begin(), buf.end()));
  ASSERT_TRUE(rgba.ok());
  EXPECT_EQ(rgba->type(), CV_8UC3);
  EXPECT_EQ(Pixel(*rgba, 0, 0), cv::Vec3b(30, 20, 10));

  cv::Mat deep(10, 12, CV_16UC3, cv::Scalar(65535, 0, 32768));
  ASSERT_TRUE(cv::imencode(".png", deep, buf));
  absl::StatusOr<cv::Mat> d = DecodeImage(std::string(buf.begin(), buf.end()));
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->type(), CV_8UC3);
  EXPECT_EQ(Pixel(*d, 0, 0), cv::Vec3b(128, 0, 255));
}

TEST(ImageDecoderTest, RefusesEmptyTruncatedAndNonImageBytes) {
  EXPECT_EQ(DecodeImage("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeImage("hello, I am a text file\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  cv::Mat noise(64, 64, CV_8UC3);
  cv::randu(noise, 0, 255);
  const std::string jpeg = Encode(noise, ".jpg");
  absl::StatusOr<cv::Mat> cut = DecodeImage(jpeg.substr(0, jpeg.size() / 2));
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(cut.status().message().find("truncated"), std::string::npos) << cut.status();
  const std::string png = Encode(noise, ".png");
  EXPECT_FALSE(DecodeImage(png.substr(0, png.size() / 2)).ok());
  EXPECT_FALSE(DecodeImage(png.substr(0, 20)).ok());
  // Garbage after a valid header.
  std::string garbage = png.substr(0, 40) + std::string(500, '\x5a');
  EXPECT_FALSE(DecodeImage(garbage).ok());
}

TEST(ImageDecoderTest, RefusesOversizedImageFromItsHeaderAlone) {
  // A PNG signature and IHDR claiming 100000 x 100000 pixels, and nothing else: decoding it would
  // need 30 GB; the header check must refuse it first.
  std::string png("\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\x01\x86\xa0\0\x01\x86\xa0\x08\x02\0\0\0", 29);
  absl::StatusOr<cv::Mat> out = DecodeImage(png);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << out.status();
  EXPECT_NE(out.status().message().find("100000x100000"), std::string::npos);

  DecodeLimits small;
  small.max_pixels = 100;
  EXPECT_EQ(DecodeImage(Encode(TwoToneRgb(), ".png"), small).status().code(),
            absl::StatusCode::kResourceExhausted);
}

// Found by tests/fuzz/image_header_fuzz (seed regression-tiff-side-product-overflow): PNG and
// TIFF sides reach 2^32 - 1, and width * height overflowed int64 (undefined behaviour; it wrapped
// negative and passed the pixel limit). Such headers are refused by the limit, not decoded.
TEST(ImageDecoderTest, RefusesHeadersWhoseSideProductOverflows) {
  const std::string png(
      "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\xff\xff\xff\xff\xff\xff\xff\xff\x08\x02\0\0\0", 29);
  absl::StatusOr<cv::Mat> out = DecodeImage(png);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << out.status();
  EXPECT_NE(out.status().message().find("4294967295x4294967295"), std::string::npos)
      << out.status();
  // Little-endian TIFF, one IFD at 8 with ImageWidth 2576980377 and ImageLength 4281008896.
  std::string tiff("II*\0\x08\0\0\0\x02\0", 10);
  tiff += std::string("\x00\x01\x04\0\x01\0\0\0\x99\x99\x99\x99", 12);
  tiff += std::string("\x01\x01\x04\0\x01\0\0\0\x00\x00\x2b\xff", 12);
  ASSERT_EQ(ReadImageDimensions(tiff)->width, 2576980377L);
  out = DecodeImage(tiff);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted) << out.status();
  EXPECT_EQ(
      CheckImageSize({.width = 1L << 32, .height = 1L << 32, .format = "png"}, 40'000'000).code(),
      absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(CheckImageSize({.width = 40'000'000, .height = 1, .format = "png"}, 40'000'000).ok());
  EXPECT_EQ(CheckImageSize({.width = -5, .height = 7, .format = "bmp"}, 40'000'000).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ImageDecoderTest, FileErrorsNameTheFile) {
  const std::string dir = testing::MakeTempDir("decoder");
  const std::string empty = dir + "/empty.jpg";
  FILE* f = fopen(empty.c_str(), "w");
  fclose(f);
  absl::StatusOr<cv::Mat> e = DecodeImageFile(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find(empty), std::string::npos);
  EXPECT_NE(e.status().message().find("0 bytes"), std::string::npos);
  absl::StatusOr<cv::Mat> missing = DecodeImageFile(dir + "/missing.png");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(ImageDecoderTest, MatchesFaceRecognitionImageShapes) {
  const std::string data = testing::DatasetsDir();
  FEDFACE_SKIP_IF_MISSING(data, "../shared/datasets");
  absl::StatusOr<cv::Mat> obama = DecodeImageFile(data + "/face_recognition-tests/obama.jpg");
  ASSERT_TRUE(obama.ok());
  EXPECT_EQ(obama->rows, 1137);
  EXPECT_EQ(obama->cols, 910);
  absl::StatusOr<cv::Mat> rgba = DecodeImageFile(data + "/face_recognition-tests/32bit.png");
  ASSERT_TRUE(rgba.ok());
  EXPECT_EQ(rgba->rows, 1200);
  EXPECT_EQ(rgba->cols, 626);
  EXPECT_EQ(rgba->channels(), 3);
}

// OpenCV's decoding of `bytes` as DecodeImage had it before the libjpeg path: imdecode + BGR->RGB.
std::optional<cv::Mat> OpenCvRgb(const std::string& bytes) {
  const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  cv::Mat bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  if (bgr.empty()) return std::nullopt;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

bool SamePixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(JpegRgbDecoderTest, SamePixelsAsOpenCvOnEveryRealJpeg) {
  const std::string data = testing::DatasetsDir();
  const std::string faceapi = testing::FaceApiDir();
  if (data.empty() || faceapi.empty()) {
    FEDFACE_SKIP_OR_FAIL("../shared/datasets or the face-api cache is absent; skipping test");
  }
  int fast = 0, total = 0;
  for (const std::string& dir : {data, faceapi + "/demo"}) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (ext != ".jpg" && ext != ".jpeg") continue;
      std::ifstream in(e.path(), std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      const std::optional<cv::Mat> want = OpenCvRgb(bytes);
      const std::optional<cv::Mat> direct = DecodeYCbCrJpegToRgb(bytes);
      ++total;
      if (direct) {
        ++fast;
        ASSERT_TRUE(want.has_value()) << e.path();
        EXPECT_TRUE(SamePixels(*direct, *want)) << e.path();
      }
      absl::StatusOr<cv::Mat> product = DecodeImage(bytes);
      ASSERT_EQ(product.ok(), want.has_value()) << e.path();
      if (want) {
        EXPECT_TRUE(SamePixels(*product, *want)) << e.path();
      }
    }
  }
  std::cout << total << " JPEGs, " << fast << " decoded by libjpeg straight to RGB\n";
  EXPECT_GT(fast, total / 2);
}

TEST(JpegRgbDecoderTest, LeavesToOpenCvWhatItDoesNotDecodeTheSame) {
  cv::Mat noise(48, 64, CV_8UC3);
  cv::randu(noise, 0, 255);
  const std::string jpeg = Encode(noise, ".jpg", {cv::IMWRITE_JPEG_QUALITY, 90});
  // Plain, progressive, and with an EXIF orientation of 1: straight to RGB, OpenCV's pixels.
  for (const std::string& bytes : {jpeg, Encode(noise, ".jpg", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}),
                                   WithExifOrientation(jpeg, 1)}) {
    const std::optional<cv::Mat> direct = DecodeYCbCrJpegToRgb(bytes);
    ASSERT_TRUE(direct.has_value());
    EXPECT_TRUE(SamePixels(*direct, *OpenCvRgb(bytes)));
  }
  // An orientation to apply, a grayscale JPEG: OpenCV's path (DecodeImage still decodes them).
  EXPECT_FALSE(DecodeYCbCrJpegToRgb(WithExifOrientation(jpeg, 6)).has_value());
  const std::string gray = Encode(cv::Mat(16, 16, CV_8UC1, cv::Scalar(90)), ".jpg");
  EXPECT_FALSE(DecodeYCbCrJpegToRgb(gray).has_value());
  ASSERT_TRUE(DecodeImage(gray).ok());
  // Damaged headers and entropy data (libjpeg refuses, or warns and goes on): whatever OpenCV
  // made of it, DecodeImage makes the same, pixels or refusal.
  cv::RNG rng(13);
  for (int round = 0; round < 300; ++round) {
    std::string bad = jpeg;
    const size_t at = 2 + rng.uniform(0, static_cast<int>(jpeg.size()) - 12);
    for (size_t i = at; i < at + rng.uniform(1, 9); ++i)
      bad[i] = static_cast<char>(rng.uniform(0, 256));
    const std::optional<cv::Mat> want = OpenCvRgb(bad);
    absl::StatusOr<cv::Mat> got = DecodeImage(bad);
    ASSERT_EQ(got.ok(), want.has_value()) << at;
    if (want) {
      EXPECT_TRUE(SamePixels(*got, *want)) << at;
    }
  }
}

}  // namespace
}  // namespace fedface
