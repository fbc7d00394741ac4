// Colour JPEGs decoded by libjpeg straight into RGB. OpenCV's decoder asks libjpeg for RGB too,
// then swaps every pixel to BGR in a scalar loop (about 5 of its 11 CPU ms on a 1080p photo), which
// DecodeImage then swapped back: the same pixels for less than half the work.
#pragma once

#include <opencv2/core/mat.hpp>
#include <optional>
#include <string_view>

namespace fedface {

// CV_8UC3 RGB, pixel for pixel what cv::imdecode(IMREAD_COLOR) + BGR->RGB gives, for a
// three-component YCbCr JPEG without an EXIF orientation other than 1. nullopt for anything else
// (other colour spaces, an orientation to apply, an EXIF block it cannot read, and any error or
// warning from libjpeg): the caller then decodes with OpenCV, which keeps its behaviour and its
// error messages for every such file.
std::optional<cv::Mat> DecodeYCbCrJpegToRgb(std::string_view bytes);

}  // namespace fedface
