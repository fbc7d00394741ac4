// Durable single-file writes for the package library (keys and package files): the data is
// written to a temporary file with the requested mode, fsynced, and put in place atomically.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace fedface::package_internal {

// Writes `data` to `path` with `mode` (not subject to a looser umask). When !overwrite the file
// is linked into place only if `path` does not exist (race-free; AlreadyExists otherwise).
// Syncs the file and its directory. Errors name the path.
absl::Status WriteFileDurably(const std::string& path, std::string_view data, mode_t mode,
                              bool overwrite);

}  // namespace fedface::package_internal
