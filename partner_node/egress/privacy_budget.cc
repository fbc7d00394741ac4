#include "partner_node/egress/privacy_budget.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {
namespace {

// PRAGMA application_id "FFPB": any other SQLite file (ledger, gallery) is refused, not reused.
constexpr int kBudgetApplicationId = 0x46465042;
constexpr int kBudgetSchemaVersion = 1;

// Epsilon is kept in integer nano-units so that sums are exact and the limit check cannot be
// fooled by floating-point rounding.
constexpr double kNanoPerEpsilon = 1e9;

constexpr char kSchema[] = R"sql(
CREATE TABLE vendor_budget (
  vendor        TEXT PRIMARY KEY NOT NULL,
  spent_nano    INTEGER NOT NULL CHECK (spent_nano >= 0)
);
CREATE TABLE releases (
  vendor          TEXT NOT NULL,
  round_id        TEXT NOT NULL,
  request_sha256  TEXT NOT NULL,
  epsilon_nano    INTEGER NOT NULL CHECK (epsilon_nano >= 0),
  release         BLOB NOT NULL,
  created_utc     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  PRIMARY KEY (vendor, round_id)
);
)sql";

int64_t ToNano(double epsilon) { return std::llround(epsilon * kNanoPerEpsilon); }
double FromNano(int64_t nano) { return static_cast<double>(nano) / kNanoPerEpsilon; }

// RESOURCE_EXHAUSTED and ALREADY_EXISTS only ever mean the budget decisions in the header.
absl::Status Local(const absl::Status& s) { return sqlite::InternalUnlessBusy(s); }

}  // namespace

absl::StatusOr<std::unique_ptr<PrivacyBudget>> PrivacyBudget::Open(const std::string& path,
                                                                   double epsilon_limit) {
  if (!(epsilon_limit >= 0) || !std::isfinite(epsilon_limit)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": privacy budget limit must be a finite epsilon >= 0"));
  }
  ASSIGN_OR_RETURN(sqlite3 * db, sqlite::OpenWithSchema(path, sqlite::OpenOptions{},
                                                        kBudgetApplicationId, kBudgetSchemaVersion,
                                                        kSchema, "a privacy budget database"));
  return std::unique_ptr<PrivacyBudget>(new PrivacyBudget(path, db, epsilon_limit));
}

PrivacyBudget::~PrivacyBudget() { sqlite::Close(db_); }

absl::StatusOr<std::optional<StoredRelease>> PrivacyBudget::FindLocked(
    std::string_view vendor, std::string_view round_id) const {
  absl::StatusOr<sqlite::Statement> q =
      sqlite::Statement::Prepare(db_,
                                 "SELECT request_sha256, epsilon_nano, release FROM releases "
                                 "WHERE vendor = ?1 AND round_id = ?2");
  if (!q.ok()) return Local(q.status());
  q->Bind(1, vendor).Bind(2, round_id);
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return Local(row.status());
  if (!*row) return std::optional<StoredRelease>();
  StoredRelease r;
  r.vendor = std::string(vendor);
  r.round_id = std::string(round_id);
  r.request_sha256 = q->Text(0);
  r.epsilon = FromNano(q->Int(1));
  r.release_bytes = std::string(q->Blob(2));
  return std::optional<StoredRelease>(std::move(r));
}

absl::StatusOr<double> PrivacyBudget::SpentLocked(std::string_view vendor) const {
  absl::StatusOr<sqlite::Statement> q =
      sqlite::Statement::Prepare(db_, "SELECT spent_nano FROM vendor_budget WHERE vendor = ?1");
  if (!q.ok()) return Local(q.status());
  q->Bind(1, vendor);
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return Local(row.status());
  return *row ? FromNano(q->Int(0)) : 0.0;
}

absl::StatusOr<std::optional<StoredRelease>> PrivacyBudget::Find(std::string_view vendor,
                                                                 std::string_view round_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return FindLocked(vendor, round_id);
}

absl::StatusOr<double> PrivacyBudget::Spent(std::string_view vendor) const {
  std::lock_guard<std::mutex> lock(mu_);
  return SpentLocked(vendor);
}

// One budget for the partner: what every vendor identity spent counts against the limit, so a
// vendor holding several identities (names, certificates) cannot multiply it.
absl::StatusOr<int64_t> PrivacyBudget::SpentNanoByAllLocked() const {
  absl::StatusOr<sqlite::Statement> q =
      sqlite::Statement::Prepare(db_, "SELECT COALESCE(SUM(spent_nano), 0) FROM vendor_budget");
  if (!q.ok()) return Local(q.status());
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return Local(row.status());
  return *row ? q->Int(0) : int64_t{0};
}

absl::StatusOr<double> PrivacyBudget::SpentByAll() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(int64_t spent, SpentNanoByAllLocked());
  return FromNano(spent);
}

absl::Status PrivacyBudget::CanPayLocked(double epsilon) const {
  ASSIGN_OR_RETURN(int64_t spent, SpentNanoByAllLocked());
  if (spent + ToNano(epsilon) > ToNano(limit_)) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "privacy budget exhausted for this vendor: vendors spent epsilon %.6g of the partner's "
        "%.6g, this release needs %.6g",
        FromNano(spent), limit_, epsilon));
  }
  return absl::OkStatus();
}

absl::Status PrivacyBudget::CanPay(double epsilon) const {
  std::lock_guard<std::mutex> lock(mu_);
  return CanPayLocked(epsilon);
}

absl::Status PrivacyBudget::ChargeLocked(std::string_view vendor, double epsilon) {
  RETURN_IF_ERROR(CanPayLocked(epsilon));
  absl::StatusOr<sqlite::Statement> upsert = sqlite::Statement::Prepare(
      db_,
      "INSERT INTO vendor_budget (vendor, spent_nano) VALUES (?1, ?2) "
      "ON CONFLICT(vendor) DO UPDATE SET spent_nano = spent_nano + excluded.spent_nano");
  if (!upsert.ok()) return Local(upsert.status());
  upsert->Bind(1, vendor).Bind(2, ToNano(epsilon));
  if (absl::Status s = upsert->Run(); !s.ok()) return Local(s);
  return absl::OkStatus();
}

absl::Status PrivacyBudget::Charge(std::string_view vendor, double epsilon) {
  if (!(epsilon >= 0) || !std::isfinite(epsilon)) {
    return absl::InvalidArgumentError("privacy budget: epsilon must be finite and >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::unique_ptr<sqlite::Transaction>> tx = sqlite::Transaction::Begin(db_);
  if (!tx.ok()) return Local(tx.status());
  RETURN_IF_ERROR(ChargeLocked(vendor, epsilon));
  if (absl::Status s = (*tx)->Commit(); !s.ok()) return Local(s);
  return absl::OkStatus();
}

absl::StatusOr<StoredRelease> PrivacyBudget::ChargeAndStore(const StoredRelease& release) {
  if (!(release.epsilon >= 0) || !std::isfinite(release.epsilon)) {
    return absl::InvalidArgumentError("privacy budget: epsilon must be finite and >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::unique_ptr<sqlite::Transaction>> tx = sqlite::Transaction::Begin(db_);
  if (!tx.ok()) return Local(tx.status());

  // Inside the write transaction: a concurrent identical request sees this one's row.
  ASSIGN_OR_RETURN(std::optional<StoredRelease> existing,
                   FindLocked(release.vendor, release.round_id));  // already Local
  if (existing.has_value()) {
    if (existing->request_sha256 == release.request_sha256) return *existing;
    return absl::AlreadyExistsError(
        absl::StrCat("round_id '", release.round_id,
                     "' was already used by this vendor for a different request"));
  }

  RETURN_IF_ERROR(ChargeLocked(release.vendor, release.epsilon));
  const int64_t charge = ToNano(release.epsilon);

  absl::StatusOr<sqlite::Statement> insert = sqlite::Statement::Prepare(
      db_,
      "INSERT INTO releases (vendor, round_id, request_sha256, epsilon_nano, release) "
      "VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!insert.ok()) return Local(insert.status());
  insert->Bind(1, release.vendor)
      .Bind(2, release.round_id)
      .Bind(3, release.request_sha256)
      .Bind(4, charge)
      .BindBlob(5, release.release_bytes.data(), release.release_bytes.size());
  if (absl::Status s = insert->Run(); !s.ok()) return Local(s);
  if (absl::Status s = (*tx)->Commit(); !s.ok()) return Local(s);
  return release;
}

}  // namespace fedface::partner
