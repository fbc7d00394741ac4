// Releases held for a person's approval (config egress.require_approval), in the partner's own
// SQLite file (WAL, synchronous=FULL), shared by `partner_node serve` and `partner_node releases`.
//
// Life of a held release:
//   held      serve ran the evaluation, the egress guard composed the bytes (ComposeRelease),
//             nothing was charged or sent; the vendor was told "held for approval" (the
//             catalogue's text: the id N stays in the partner's log)
//   approved  `releases approve N` (release_approval.h) charged the partner's privacy budget and
//             stored the bytes as the vendor's release of that round_id, so the vendor's retry
//             is answered by EgressGuard::Admit with exactly these bytes
//   sent      serve sent them (the ledger has the entry)
//   declined  `releases decline N`: never sent; the vendor's retries are refused
// A row is keyed by (vendor, round_id) like the budget's releases, and remembers the request's
// hash so that a different request under the same round_id is refused.
//
// The rows hold what may leave anyway (the release bytes, the vendor's own round_id and a
// summary of vendor-side values), states and times, and, never sent, the request and a digest of
// the exact evaluation behind the release (to tell later whether the gallery changed).
//
// Thread safety: thread-safe; several processes may use one file (SQLite locking).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;

namespace fedface::partner {

enum class HeldState { kHeld, kApproved, kSent, kDeclined };
const char* HeldStateName(HeldState state);  // "held", "approved", "sent", "declined"

struct HeldRelease {
  int64_t id = 0;
  std::string vendor;
  std::string round_id;
  std::string request_sha256;
  std::string summary;  // e.g. "verification model=1.0.0 seed=7 sample=0"
  double epsilon = 0;
  std::string release_bytes;  // exactly what approval sends
  HeldState state = HeldState::kHeld;
  std::string held_utc;
  std::string decided_utc;  // "" until approved or declined
  std::string sent_utc;     // "" until sent
  // Local only, for `releases show ID --local`: the vendor's request (serialized) and the
  // digest of the exact aggregate behind the release (evaluation_fingerprint.h). Empty for rows
  // held by an older partner_node.
  std::string request_bytes;
  std::string evaluation_sha256;
};

class HeldReleaseStore {
 public:
  enum class OpenMode { kCreateIfMissing, kMustExist };
  // Opens or creates the store; errors name the file.
  static absl::StatusOr<std::unique_ptr<HeldReleaseStore>> Open(const std::string& path,
                                                                OpenMode mode);
  ~HeldReleaseStore();
  HeldReleaseStore(const HeldReleaseStore&) = delete;
  HeldReleaseStore& operator=(const HeldReleaseStore&) = delete;

  // Records a new held release (state held) and returns it with its id. When (vendor, round_id)
  // is already held with the same request hash, returns that row unchanged (a concurrent or
  // repeated request); with another hash, ALREADY_EXISTS.
  absl::StatusOr<HeldRelease> Hold(const HeldRelease& release);

  absl::StatusOr<std::optional<HeldRelease>> Find(std::string_view vendor,
                                                  std::string_view round_id) const;
  absl::StatusOr<std::optional<HeldRelease>> Get(int64_t id) const;
  // Every row, by id.
  absl::StatusOr<std::vector<HeldRelease>> List() const;

  // held -> approved (approved stays approved). FAILED_PRECONDITION from sent or declined,
  // NOT_FOUND for an unknown id.
  absl::Status MarkApproved(int64_t id);
  // held -> declined. FAILED_PRECONDITION from any other state.
  absl::Status MarkDeclined(int64_t id);
  // held or approved -> sent (sent stays sent): called after the bytes went out.
  absl::Status MarkSent(int64_t id);

  const std::string& path() const { return path_; }

 private:
  HeldReleaseStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}
  absl::StatusOr<std::optional<HeldRelease>> FindWhere(std::string_view where, std::string_view a,
                                                       std::string_view b, int64_t id) const;
  absl::Status Transition(int64_t id, std::string_view to, std::string_view allowed_from,
                          std::string_view time_column);

  const std::string path_;
  sqlite3* const db_;
  mutable std::mutex mu_;
};

}  // namespace fedface::partner
