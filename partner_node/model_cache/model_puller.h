// `models pull`: fetch a model version from the vendor, verify it in full, install it into the
// model cache and make it active.
//
// Order of checks (the first failure refuses the pull; the active model stays as it was):
//   1. the version is offered by the vendor (pinned, or the newest by version precedence);
//   2. the manifest response is within limits, its signature verifies against the PINNED key,
//      it names the requested version and declares at most model_cache.max_weights_bytes;
//   3. the weights stream keeps to the declared size and consecutive offsets (resuming from a
//      partial download of the same weights);
//   4. the assembled package passes LoadVerifiedModel (signature, sha256 of weights and chips,
//      self-test) in a staging folder, which is then fsynced and renamed into place;
//   5. only then `active` is pointed at the new version (unless the request says
//      make_active = false: an evaluation-only pull, which leaves `active` as it was).
// A version that is already installed is re-verified and activated without a download (an
// evaluation-only pull of an installed version does nothing: loading it verifies it).
//
// Thread safety: takes the cache lock for its whole duration; a concurrent pull fails at once.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"

namespace fedface::partner {

struct PullRequest {
  std::string version;      // "" = model_cache.pinned_version, or else the vendor's newest
  bool make_active = true;  // false: install only; `active` is never changed
};

struct PullResult {
  std::string version;
  std::string previous_active;  // "" when none
  bool downloaded = false;      // false when the version was already installed
  uint64_t weights_bytes = 0;
  uint64_t resumed_from = 0;  // > 0 when an interrupted download was continued
  uint64_t received = 0;      // bytes received by this pull
  float self_test_max_distance = 0.f;
  double download_seconds = 0;  // the weights stream
  double verify_seconds = 0;    // LoadVerifiedModel (signature, sha256, self-test)
};

// Runs the pull described above with the partner configuration (PartnerConfigSchema).
// `progress` (may be null) receives a few human-readable lines. Errors are one line: why the
// version was refused, or how far an interrupted download got.
absl::StatusOr<PullResult> PullModel(const Config& config, const PullRequest& request,
                                     std::ostream* progress);

}  // namespace fedface::partner
