// A resumable download of one version's weights into a partial file.
//
// The partial file holds a prefix of the weights. A download asks the vendor for the bytes from
// the partial file's size on and accepts a chunk only when:
//   - its offset equals the number of bytes held so far (no gaps, no overlaps),
//   - it carries 1 .. kMaxWeightsChunkBytes bytes,
//   - it does not go beyond `expected_bytes`, the size declared by the SIGNED manifest (never
//     by the listing or the stream).
// Accepted bytes are appended and flushed as they arrive, so an interruption (vendor killed,
// network lost, deadline) keeps them and the next call resumes. The content is NOT verified
// here: the caller checks it (sha256 and signature via core/package) once it is complete.
//
// Thread safety: one download per partial file at a time (the cache lock guarantees it).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fedface/v1/model_registry.grpc.pb.h"

namespace fedface::partner {

inline constexpr uint64_t kMaxWeightsChunkBytes = uint64_t{1} << 20;  // 1 MiB

struct WeightsDownload {
  uint64_t resumed_from = 0;  // partial file size when the download started
  uint64_t received = 0;      // bytes accepted by this call
};

// Brings `partial_path` to exactly `expected_bytes` bytes from the vendor's DownloadWeights
// stream of `version`. A partial file larger than expected_bytes is discarded first. Returns OK
// only when the file holds expected_bytes bytes; on an interruption returns the gRPC error
// (e.g. UNAVAILABLE) with how far it got; on a protocol violation (wrong offset, oversized
// chunk, bytes beyond the declared size, a stream that ends early) returns DATA_LOSS or
// OUT_OF_RANGE naming it. `progress` (may be null) gets one line when the download starts.
absl::StatusOr<WeightsDownload> DownloadWeightsResumably(
    fedface::v1::ModelRegistry::StubInterface& stub, const std::string& version,
    uint64_t expected_bytes, const std::string& partial_path, absl::Duration deadline,
    std::ostream* progress);

}  // namespace fedface::partner
