#include "core/engine/jpeg_rgb_decoder.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

namespace fedface {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
};

// Errors and warnings alike leave for the OpenCV path (a corrupt stream may only warn).
[[noreturn]] void OnError(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}
void OnMessage(j_common_ptr cinfo, int level) {
  if (level < 0) OnError(cinfo);
}

uint32_t Read(const uint8_t* p, int bytes, bool big_endian) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= uint32_t{p[big_endian ? i : bytes - 1 - i]} << (8 * (bytes - 1 - i));
  return v;
}

// The EXIF orientation of IFD0 (1 when the tag is absent), or 0 when the block cannot be read.
int ExifOrientation(const jpeg_saved_marker_ptr marker) {
  const uint8_t* d = marker->data;
  const size_t n = marker->data_length;
  if (n < 14 || std::memcmp(d, "Exif\0\0", 6) != 0) return 0;
  const uint8_t* tiff = d + 6;
  const size_t size = n - 6;
  bool big;
  if (std::memcmp(tiff, "MM\0*", 4) == 0) {
    big = true;
  } else if (std::memcmp(tiff, "II*\0", 4) == 0) {
    big = false;
  } else {
    return 0;
  }
  const uint32_t ifd = Read(tiff + 4, 4, big);
  if (ifd > size || size - ifd < 2) return 0;
  const uint32_t entries = Read(tiff + ifd, 2, big);
  if ((size - ifd - 2) / 12 < entries) return 0;
  for (uint32_t i = 0; i < entries; ++i) {
    const uint8_t* e = tiff + ifd + 2 + 12 * i;
    if (Read(e, 2, big) != 0x0112) continue;
    if (Read(e + 2, 2, big) != 3 || Read(e + 4, 4, big) != 1) return 0;  // SHORT, count 1
    return static_cast<int>(Read(e + 8, 2, big));
  }
  return 1;
}

// Everything that longjmp may skip lives in the caller: no destructor runs between setjmp and
// longjmp here.
bool Decode(std::string_view bytes, jpeg_decompress_struct& cinfo, ErrorManager& err,
            cv::Mat& out) {
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnError;
  err.pub.emit_message = OnMessage;
  if (setjmp(err.jump)) return false;
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  if (jpeg_read_header(&cinfo, TRUE) != JPEG_HEADER_OK) return false;
  if (cinfo.jpeg_color_space != JCS_YCbCr || cinfo.num_components != 3) return false;
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    // OpenCV applies an EXIF orientation; only "none to apply" in every EXIF block stays here.
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
        std::memcmp(m->data, "Exif\0\0", 6) == 0 && ExifOrientation(m) != 1) {
      return false;
    }
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  if (cinfo.output_components != 3) return false;
  out.create(static_cast<int>(cinfo.output_height), static_cast<int>(cinfo.output_width), CV_8UC3);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.ptr<uint8_t>(static_cast<int>(cinfo.output_scanline));
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  return true;
}

}  // namespace

std::optional<cv::Mat> DecodeYCbCrJpegToRgb(std::string_view bytes) {
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  cv::Mat out;
  const bool ok = Decode(bytes, cinfo, err, out);
  jpeg_destroy_decompress(&cinfo);
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace fedface
