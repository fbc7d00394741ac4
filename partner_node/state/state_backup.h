// Backup and restore of a partner's state (`partner_node state backup|restore|show`).
//
// A backup is a folder (0700, every file 0600: it holds the gallery's embeddings, so it is kept
// like the gallery itself):
//   stores/NAME.db         an online copy of each SQLite store (gallery.db, ledger.path,
//                          egress.budget_path, egress.held_releases_path, evaluation.state_dir's
//                          reembedding.db and galleries/V.db), taken with SQLite's backup API
//                          while serve or enroll may be running
//   model_cache/...        the model cache's files (installed versions and `active`)
//   config/...             the configuration file and the files it names (certificates, keys,
//                          the pinned vendor key); restore does not place these (they live in
//                          /etc/fedface, which the package owns): copy them back by hand
//   manifest.json          written last: every file's size and sha256, the key each came from,
//                          the ledger head and the figures of `state show` at backup time
// The ledger is copied before the budget, so every release in the ledger copy is charged in the
// budget copy (a release is charged before it is ledgered): a restore never gives back budget
// that was spent on a recorded release.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"

namespace fedface::partner {

// What `state show` prints and a backup's manifest records.
struct StateFigures {
  int64_t subjects = 0;
  int64_t images = 0;  // enrolled images, any model version
  int64_t ledger_entries = 0;
  int64_t ledger_head_seq = 0;
  std::string ledger_head_hash;  // kLedgerGenesisHash when empty
  double epsilon_spent = 0;      // by all vendors together
  double epsilon_budget = 0;     // egress.epsilon_budget
};
std::string FormatFigures(const StateFigures& f);

// The figures of the state `config` names (absent stores count as empty).
absl::StatusOr<StateFigures> ReadFigures(const Config& config);

// Backs up the state `config` (loaded from config_path) names into `to`, which must be absent or
// an empty folder. Returns the figures of the copies.
absl::StatusOr<StateFigures> BackupState(const Config& config, const std::string& config_path,
                                         const std::string& to);

// Checks every file of the backup `from` against its manifest, then places the stores and the
// model cache at the paths `config` names. Refuses (nothing written) when a file of the backup is
// missing or differs, when a target exists unless `force`, and when a target store is open in
// another process. Afterwards verifies the restored ledger's chain and that its head is the
// manifest's. Returns the figures of the restored state.
absl::StatusOr<StateFigures> RestoreState(const Config& config, const std::string& from,
                                          bool force);

}  // namespace fedface::partner
