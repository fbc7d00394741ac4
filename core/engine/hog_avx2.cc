#include "core/engine/hog_avx2.h"

// Every standard header first, compiled for the baseline: the standard library's templates are
// shared with the rest of the program, so none may be defined under the AVX2 target below.
#include <bits/stdc++.h>

// dlib's templates compiled for AVX2 + FMA (its SIMD layer sees __AVX__ and uses 8-float vectors)
// under another namespace name, so that none of them is merged with the baseline build that
// face_detector.cc and face_aligner.cc instantiate (one definition per name at link time).
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#pragma GCC optimize("O3")
// GCC's target pragma does not define __AVX__ and friends, so dlib's SIMD check is told directly.
#define DLIB_HAVE_SSE2
#define DLIB_HAVE_SSE3
#define DLIB_HAVE_SSE41
#define DLIB_HAVE_AVX
#define dlib fedface_dlib_avx2
#include <dlib/image_processing/frontal_face_detector.h>
#undef dlib
#pragma GCC pop_options

namespace fedface {
namespace {

namespace avx = ::fedface_dlib_avx2;

class Avx2HogScanner final : public HogScanner {
 public:
  explicit Avx2HogScanner(const std::string& detector) { Load(detector); }

  std::vector<HogDetection> Scan(const uint8_t* gray, int rows, int cols, size_t stride) override {
    return ScanAvx2(gray, rows, cols, stride);
  }

 private:
  __attribute__((target("avx2,fma"))) void Load(const std::string& detector) {
    std::istringstream in(detector);
    avx::deserialize(detector_, in);
  }

  __attribute__((target("avx2,fma"))) std::vector<HogDetection> ScanAvx2(const uint8_t* gray,
                                                                         int rows, int cols,
                                                                         size_t stride) {
    image_.set_size(rows, cols);
    for (int r = 0; r < rows; ++r) std::memcpy(&image_[r][0], gray + r * stride, cols);
    std::vector<avx::rect_detection> found;
    detector_(image_, found, 0.0);
    std::vector<HogDetection> out;
    out.reserve(found.size());
    for (const avx::rect_detection& d : found) {
      out.push_back(
          {d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), d.detection_confidence});
    }
    return out;
  }

  avx::frontal_face_detector detector_;
  avx::array2d<unsigned char> image_;
};

}  // namespace

std::unique_ptr<HogScanner> MakeAvx2HogScanner(const std::string& detector) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return nullptr;
  return std::make_unique<Avx2HogScanner>(detector);
}

}  // namespace fedface
