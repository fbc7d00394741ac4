// libFuzzer target for the model package's text formats, the two a vendor controls before any
// weights are read: the signed manifest.json (core/package/model_manifest.h) and the tfjs weights
// manifest with its .bin bytes (core/package/tfjs_weights.h). The first input byte picks the
// reader; for tfjs the rest is "<manifest JSON>\0<bin bytes>" (group 0's bytes; later groups
// empty). Whatever the bytes: an error or a value, no crash, no read out of bounds, and a parsed
// manifest serializes back to a manifest that parses to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/package/model_manifest.h"
#include "core/package/tfjs_weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    const absl::StatusOr<fedface::ModelManifest> m = fedface::ParseManifest(rest, "manifest.json");
    if (!m.ok()) return 0;
    (void)fedface::ValidateManifest(*m);
    const std::string once = fedface::SerializeManifest(*m);
    const absl::StatusOr<fedface::ModelManifest> again = fedface::ParseManifest(once, "again");
    if (!again.ok() || fedface::SerializeManifest(*again) != once) __builtin_trap();
    return 0;
  }
  const size_t split = rest.find('\0');
  const std::string_view manifest = rest.substr(0, split);
  const std::string_view bin = split == rest.npos ? std::string_view() : rest.substr(split + 1);
  std::vector<std::string_view> groups = {bin, {}, {}, {}};
  (void)fedface::DecodeTfjsWeights(manifest, groups, "weights_manifest.json");
  return 0;
}
