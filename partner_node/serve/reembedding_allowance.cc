#include "partner_node/serve/reembedding_allowance.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {
namespace {

// PRAGMA application_id "FFRE": any other SQLite file (budget, ledger, gallery) is refused.
constexpr int kAllowanceApplicationId = 0x46465245;
constexpr int kAllowanceSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE usage (
  day     TEXT PRIMARY KEY NOT NULL,
  images  INTEGER NOT NULL CHECK (images >= 0),
  rounds  INTEGER NOT NULL CHECK (rounds >= 0)
);
)sql";

std::string UtcDay(absl::Time t) { return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone()); }

// RESOURCE_EXHAUSTED only ever means the refusal documented in the header.
absl::Status Local(const absl::Status& s) { return sqlite::InternalUnlessBusy(s); }

}  // namespace

absl::StatusOr<std::unique_ptr<ReembeddingAllowance>> ReembeddingAllowance::Open(
    const std::string& path, ReembeddingLimits limits) {
  if (limits.max_per_round < 0 || limits.max_per_day < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": re-embedding limits must be >= 0"));
  }
  ASSIGN_OR_RETURN(sqlite3 * db,
                   sqlite::OpenWithSchema(path, sqlite::OpenOptions{}, kAllowanceApplicationId,
                                          kAllowanceSchemaVersion, kSchema,
                                          "a re-embedding allowance database"));
  return std::unique_ptr<ReembeddingAllowance>(new ReembeddingAllowance(path, db, limits));
}

ReembeddingAllowance::~ReembeddingAllowance() { sqlite::Close(db_); }

absl::StatusOr<int64_t> ReembeddingAllowance::UsedLocked(const std::string& day) const {
  absl::StatusOr<sqlite::Statement> q =
      sqlite::Statement::Prepare(db_, "SELECT images FROM usage WHERE day = ?1");
  if (!q.ok()) return Local(q.status());
  q->Bind(1, day);
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return Local(row.status());
  return *row ? q->Int(0) : int64_t{0};
}

absl::StatusOr<int64_t> ReembeddingAllowance::UsedOn(absl::Time now) const {
  std::lock_guard<std::mutex> lock(mu_);
  return UsedLocked(UtcDay(now));
}

absl::Status ReembeddingAllowance::Admit(int64_t images, absl::Time now) {
  if (images < 0) return absl::InvalidArgumentError("re-embedding allowance: images < 0");
  if (images > limits_.max_per_round) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "re-embedding ", images, " image(s) exceeds the limit of ", limits_.max_per_round,
        " per round (evaluation.max_reembed_images_per_round)"));
  }
  const std::string day = UtcDay(now);
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::unique_ptr<sqlite::Transaction>> tx = sqlite::Transaction::Begin(db_);
  if (!tx.ok()) return Local(tx.status());
  ASSIGN_OR_RETURN(int64_t used, UsedLocked(day));
  if (used + images > limits_.max_per_day) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "re-embedding ", images, " image(s) would exceed the limit of ", limits_.max_per_day,
        " per day (evaluation.max_reembed_images_per_day): ", used, " already re-embedded on ", day,
        " UTC (", path_, ")"));
  }
  absl::StatusOr<sqlite::Statement> upsert = sqlite::Statement::Prepare(
      db_,
      "INSERT INTO usage (day, images, rounds) VALUES (?1, ?2, 1) "
      "ON CONFLICT(day) DO UPDATE SET images = images + excluded.images, rounds = rounds + 1");
  if (!upsert.ok()) return Local(upsert.status());
  upsert->Bind(1, day).Bind(2, images);
  if (absl::Status s = upsert->Run(); !s.ok()) return Local(s);
  return Local((*tx)->Commit());
}

}  // namespace fedface::partner
