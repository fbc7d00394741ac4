// libFuzzer target for FaceResNet::FromSerialized: the bytes of weights.dat as a vendor could sign
// them. A run must never crash, abort, hang or leak, whatever the bytes; when the bytes load, the
// network must embed a chip into finite-or-refusable values without crashing. The pre-walk runs
// first (as FromSerialized runs it): a stream it refuses must never load.
//
// Built in build-fuzz (tests/fuzz/CMakeLists.txt, scripts/fuzz.sh). Seed it with the
// real weights (the fixture package's weights.dat), e.g.
//   mkdir -p corpus && cp build/test_fixtures/package/weights.dat corpus/
//   build-fuzz/model_weights_fuzz -max_len=30000000 -rss_limit_mb=4096 corpus/
#include <cstddef>
#include <cstdint>
#include <opencv2/core.hpp>
#include <string_view>

#include "core/engine/face_resnet.h"
#include "core/engine/weights_prewalk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const bool walked = fedface::PrewalkFaceResNetWeights(bytes).ok();
  auto net = fedface::FaceResNet::FromSerialized(bytes);
  if (net.ok() && !walked) __builtin_trap();  // dlib reached bytes the pre-walk refused
  if (net.ok()) {
    const cv::Mat chip(fedface::kChipSize, fedface::kChipSize, CV_8UC3, cv::Scalar(90, 120, 150));
    (void)(*net)->Embed({chip});
  }
  return 0;
}
