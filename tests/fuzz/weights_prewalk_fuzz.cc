// libFuzzer target for PrewalkFaceResNetWeights alone (no dlib, so thousands of runs a second on a
// full-size network): whatever the bytes, it returns, never crashes, never reads out of bounds,
// never allocates by a header, and its errors are one line starting "weights".
//
// Built in build-fuzz (tests/fuzz/CMakeLists.txt, scripts/fuzz.sh). Seed it with the
// real weights, e.g.
//   mkdir -p corpus && cp build/test_fixtures/package/weights.dat corpus/
//   build-fuzz/weights_prewalk_fuzz -max_len=30000000 -rss_limit_mb=2048 corpus/
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/engine/weights_prewalk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Status st = fedface::PrewalkFaceResNetWeights(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (!st.ok()) {
    const auto message = st.message();
    if (message.substr(0, 7) != "weights" || message.find('\n') != message.npos) __builtin_trap();
  }
  return 0;
}
