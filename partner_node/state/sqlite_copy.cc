#include "partner_node/state/sqlite_copy.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {

absl::Status OnlineCopy(const std::string& from, const std::string& to) {
  struct stat st;
  if (::stat(to.c_str(), &st) == 0) return absl::AlreadyExistsError(absl::StrCat(to, ": exists"));
  ASSIGN_OR_RETURN(sqlite3 * src, sqlite::Open(from, {.create_if_missing = false}));
  sqlite3* dst = nullptr;
  if (sqlite3_open_v2(to.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    absl::Status s = sqlite::Error(dst, "cannot create the copy");
    sqlite3_close(dst);
    sqlite::Close(src);
    return s;
  }
  sqlite3_backup* backup = sqlite3_backup_init(dst, "main", src, "main");
  absl::Status status;
  if (backup == nullptr) {
    status = sqlite::Error(dst, absl::StrCat("cannot back up ", from));
  } else {
    int rc;
    // -1: every page in one step, i.e. one read transaction on the source.
    while ((rc = sqlite3_backup_step(backup, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    sqlite3_backup_finish(backup);
    if (rc != SQLITE_DONE) status = sqlite::Error(dst, absl::StrCat("backing up ", from));
  }
  sqlite3_close(dst);
  sqlite::Close(src);
  return status;
}

absl::StatusOr<bool> OpenElsewhere(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return false;
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    absl::Status s = sqlite::Error(db, "cannot open");
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 0);
  absl::Status s = sqlite::Exec(db, "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE;");
  const bool busy = !s.ok() && sqlite3_errcode(db) == SQLITE_BUSY;
  if (s.ok()) s = sqlite::Exec(db, "ROLLBACK;");
  sqlite3_close(db);
  if (busy) return true;
  if (!s.ok()) return s;
  return false;
}

}  // namespace fedface::partner
