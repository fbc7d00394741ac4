// The vendor's record of evaluation rounds, in SQLite (WAL, synchronous=FULL): each round's
// request and settings, and each partner's outcome with the exact release it sent. The report
// of any stored round can be recomputed from it (`model_vendor rounds show ID`), after a restart.
//
// A round is written as "running" before any partner is asked, each partner's outcome as it
// arrives, and the finish time last; a round interrupted half-way is therefore visible, and
// running `model_vendor round --round-id ID` again finishes it: the partners replay what they
// already released. Re-running a round replaces its outcomes with the new run's and counts the
// run; a re-run with another model version, protocol or sample size is refused (it would be a
// different request under the same id, which partners refuse with ALREADY_EXISTS too).
//
// Thread safety: one RoundsStore per thread; several processes may share the file (SQLite
// locking, 10 s busy timeout).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model_vendor/coordinator/round_record.h"

struct sqlite3;

namespace fedface::vendor {

struct RoundSummary {
  std::string round_id;
  std::string model_version;
  std::string protocol;  // "verification" / "identification"
  std::string state;     // "running", "complete", "quorum_not_met"
  std::string started_at;
  std::string finished_at;  // "" while running
  int partners = 0;         // outcomes recorded
  int contributed = 0;
  int quorum = 0;
  int runs = 0;
};

class RoundsStore {
 public:
  // Opens (creating when absent, with its folder) the database at `path`. Fails naming the file
  // when it is not a fedface rounds database or has another schema version.
  static absl::StatusOr<std::unique_ptr<RoundsStore>> Open(const std::string& path);
  ~RoundsStore();
  RoundsStore(const RoundsStore&) = delete;
  RoundsStore& operator=(const RoundsStore&) = delete;

  // Records `round` as running (outcomes and finished_at are ignored). For an id already stored:
  // FailedPrecondition naming the field when model version, protocol, seed or sample size
  // differ; otherwise the old outcomes are dropped and the run counted. Returns the run number.
  absl::StatusOr<int> BeginRound(const RoundRecord& round);

  // Stores (or replaces) one partner's outcome; `position` orders the partners in reports.
  absl::Status SaveOutcome(const std::string& round_id, int position,
                           const PartnerOutcome& outcome);

  // Sets the finish time of a round begun with BeginRound.
  absl::Status FinishRound(const std::string& round_id, const std::string& finished_at);

  // The stored round with its outcomes (releases parsed and checked again); nullopt when the id
  // is unknown. Fails naming the round when a stored release does not parse.
  absl::StatusOr<std::optional<RoundRecord>> Load(const std::string& round_id);

  // Every round, newest first.
  absl::StatusOr<std::vector<RoundSummary>> List();

  const std::string& path() const { return path_; }

 private:
  RoundsStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Error(const std::string& what) const;

  sqlite3* db_;
  std::string path_;
};

}  // namespace fedface::vendor
