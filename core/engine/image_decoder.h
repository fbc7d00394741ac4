// Turns image files into 8-bit RGB pixels: JPEG, PNG, WebP, BMP, TIFF; EXIF orientation applied;
// gray, RGBA and 16-bit images become 8-bit RGB.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <opencv2/core/mat.hpp>

#include "absl/status/statusor.h"

namespace fedface {

struct DecodeLimits {
  // Images with more pixels are refused from their header, before decoding.
  int64_t max_pixels = 40'000'000;
  // Files larger than this are refused before they are read.
  int64_t max_file_bytes = 64ll << 20;
};

// Decodes image bytes to CV_8UC3 in RGB order. Fails with InvalidArgument for empty, truncated,
// corrupt or non-image bytes and ResourceExhausted above the limits. Thread-safe.
absl::StatusOr<cv::Mat> DecodeImage(std::string_view bytes, const DecodeLimits& limits = {});

// Reads and decodes a file; every error message starts with the path.
absl::StatusOr<cv::Mat> DecodeImageFile(const std::string& path, const DecodeLimits& limits = {});

}  // namespace fedface
