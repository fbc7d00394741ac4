// How much re-embedding of gallery images vendor rounds may make the partner do, and how much
// they did: at most max_per_round images for one round and max_per_day images per UTC day, kept
// in the partner's own SQLite file (WAL, synchronous=FULL) so that the count survives restarts
// and crashes. Re-embedding is the one piece of work a vendor can make a partner repeat at will
// (by naming model versions in turn); this is what bounds it.
//
//   usage (day TEXT PRIMARY KEY "YYYY-MM-DD" in UTC, images INTEGER, rounds INTEGER)
//
// Admit(n) is called BEFORE the work, with the number of images about to be embedded: it checks
// both bounds and charges n to today in one IMMEDIATE transaction, so concurrent rounds (threads
// or processes) cannot overrun the day together. Work that is admitted and then interrupted
// stays charged (it was done, at least in part); what it committed is not redone.
//
// Status messages of this class name counts and the file: they are for the partner's log. A
// refusal toward the vendor is kReembeddingRefused, a fixed text.
//
// Thread safety: thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct sqlite3;

namespace fedface::partner {

// What the vendor is told when a round would re-embed beyond the allowance (RESOURCE_EXHAUSTED).
// Fixed: no counts, no version, no path.
inline constexpr char kReembeddingRefused[] =
    "this round needs more re-embedding of the partner's gallery than the partner allows vendor "
    "rounds to trigger; the partner's log says more";

struct ReembeddingLimits {
  int64_t max_per_round = 0;  // >= 0
  int64_t max_per_day = 0;    // >= 0, per UTC day
};

class ReembeddingAllowance {
 public:
  // Opens or creates the file at `path` (its folder must exist). Errors name the file.
  static absl::StatusOr<std::unique_ptr<ReembeddingAllowance>> Open(const std::string& path,
                                                                    ReembeddingLimits limits);
  ~ReembeddingAllowance();
  ReembeddingAllowance(const ReembeddingAllowance&) = delete;
  ReembeddingAllowance& operator=(const ReembeddingAllowance&) = delete;

  // REQUIRES: images >= 0.
  // ENSURES: OK -> `images` is charged to the UTC day of `now` (durably).
  //   RESOURCE_EXHAUSTED -> images > max_per_round, or the day's count + images > max_per_day;
  //     nothing charged; the message names the counts and the limit (for the partner's log).
  //   Other errors: the file could not be read or written; nothing charged.
  absl::Status Admit(int64_t images, absl::Time now = absl::Now());

  // Images charged to the UTC day of `now` (0 for a day never charged).
  absl::StatusOr<int64_t> UsedOn(absl::Time now) const;

  const ReembeddingLimits& limits() const { return limits_; }
  const std::string& path() const { return path_; }

 private:
  ReembeddingAllowance(std::string path, sqlite3* db, ReembeddingLimits limits)
      : path_(std::move(path)), db_(db), limits_(limits) {}
  absl::StatusOr<int64_t> UsedLocked(const std::string& day) const;

  const std::string path_;
  sqlite3* const db_;
  const ReembeddingLimits limits_;
  mutable std::mutex mu_;
};

}  // namespace fedface::partner
