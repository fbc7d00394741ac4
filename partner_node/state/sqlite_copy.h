// SQLite's side of backing up a live partner: a consistent copy of a database while other
// processes (serve, enroll) read and write it, and whether any other process has it open.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface::partner {

// Copies the database `from` into the new file `to` with SQLite's online backup API: one read
// transaction, so the copy is the database as of one commit, also while writers are running
// (they are not blocked; the copy waits only for a checkpoint in progress). `to` must not exist.
// Fails naming the file.
absl::Status OnlineCopy(const std::string& from, const std::string& to);

// True when another process has the database `path` open. A WAL-mode connection keeps a shared
// lock on the database file for as long as it is open, so a connection in exclusive locking mode
// cannot begin a transaction while any other exists; this probe tries exactly that (without
// waiting) and releases it at once. False for a missing file.
absl::StatusOr<bool> OpenElsewhere(const std::string& path);

}  // namespace fedface::partner
