// Reads an image's pixel dimensions from its header alone, so that oversized images are refused
// before anything allocates memory for their pixels.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface {

struct ImageDimensions {
  long width = 0;
  long height = 0;
  const char* format = "";  // "jpeg", "png", "webp", "bmp", "tiff"
};

// Dimensions from the header of a JPEG, PNG, WebP, BMP or TIFF file held in `bytes`.
// Fails with InvalidArgument when the bytes are not one of these formats or the header is
// truncated or malformed. Never reads past `bytes`.
absl::StatusOr<ImageDimensions> ReadImageDimensions(std::string_view bytes);

// The size check every decoder runs before allocating pixels: InvalidArgument when the header
// gives a zero or negative side, ResourceExhausted when width x height exceeds `max_pixels`
// (computed without overflow: PNG and TIFF sides reach 2^32 - 1 each).
absl::Status CheckImageSize(const ImageDimensions& dims, int64_t max_pixels);

// True when a JPEG's entropy-coded data is followed by an end-of-image marker. libjpeg decodes a
// truncated file into a grey-filled picture with only a warning; this catches that case.
// REQUIRES: bytes is a JPEG (ReadImageDimensions said "jpeg").
bool JpegIsComplete(std::string_view bytes);

}  // namespace fedface
