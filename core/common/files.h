// Whole-file reads with a size limit, and crash-safe writes (temporary file, fsync, rename).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface {

// Reads the whole file. Fails (naming the file) when it is missing, unreadable, or larger than
// max_bytes; the size is checked before reading.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     uint64_t max_bytes = uint64_t{1} << 31);

// Writes `data` to `path` so that a crash leaves either the old file or the new one, never a
// mix: write to path.tmp.PID, fsync, rename, fsync the directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view data);

// fsyncs a directory so that a rename inside it is durable.
absl::Status SyncDirectory(const std::string& dir);

}  // namespace fedface
