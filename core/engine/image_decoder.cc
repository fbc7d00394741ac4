#include "core/engine/image_decoder.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "core/engine/image_header.h"
#include "core/engine/jpeg_rgb_decoder.h"

namespace fedface {

absl::StatusOr<cv::Mat> DecodeImage(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty file (0 bytes)");
  if (static_cast<int64_t>(bytes.size()) > limits.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "file of ", bytes.size(), " bytes exceeds the limit of ", limits.max_file_bytes));
  }
  ASSIGN_OR_RETURN(ImageDimensions dims, ReadImageDimensions(bytes));
  RETURN_IF_ERROR(CheckImageSize(dims, limits.max_pixels));
  if (std::string_view(dims.format) == "jpeg" && !JpegIsComplete(bytes)) {
    return absl::InvalidArgumentError("truncated JPEG data (no end-of-image marker)");
  }
  if (std::string_view(dims.format) == "jpeg") {
    if (std::optional<cv::Mat> rgb = DecodeYCbCrJpegToRgb(bytes)) return *std::move(rgb);
  }
  cv::Mat decoded;
  try {
    const cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    // IMREAD_COLOR applies the EXIF orientation, drops alpha, expands gray and scales 16-bit.
    decoded = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt ", dims.format, " data: ", e.what()));
  }
  if (decoded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("corrupt or truncated ", dims.format, " data"));
  }
  cv::Mat rgb;
  cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

absl::StatusOr<cv::Mat> DecodeImageFile(const std::string& path, const DecodeLimits& limits) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, static_cast<uint64_t>(limits.max_file_bytes)));
  absl::StatusOr<cv::Mat> image = DecodeImage(bytes, limits);
  if (!image.ok()) {
    return absl::Status(image.status().code(), absl::StrCat(path, ": ", image.status().message()));
  }
  return image;
}

}  // namespace fedface
