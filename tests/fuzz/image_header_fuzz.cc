// libFuzzer target for the image header parser (core/engine/image_header.h): whatever the bytes,
// ReadImageDimensions returns InvalidArgument or dimensions (never reads past the bytes: ASan),
// the size check the decoder runs next (CheckImageSize, 40 MP as the local API's default) holds
// without overflow (UBSan), and JpegIsComplete is safe on anything the parser calls a JPEG.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "core/engine/image_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<fedface::ImageDimensions> dims = fedface::ReadImageDimensions(bytes);
  if (!dims.ok()) {
    if (dims.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  const absl::Status size_ok = fedface::CheckImageSize(*dims, 40'000'000);
  // Admitted: a real size the decoder may allocate for, within the limit.
  if (size_ok.ok() &&
      (dims->width <= 0 || dims->height <= 0 || dims->width > 40'000'000 / dims->height)) {
    __builtin_trap();
  }
  if (std::strcmp(dims->format, "jpeg") == 0) (void)fedface::JpegIsComplete(bytes);
  return 0;
}
