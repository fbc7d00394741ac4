#include "partner_node/egress/held_release_store.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {
namespace {

// PRAGMA application_id "FFHR": another SQLite file (budget, ledger, gallery) is refused.
constexpr int kHeldApplicationId = 0x46464852;
constexpr int kHeldSchemaVersion = 1;
constexpr double kNanoPerEpsilon = 1e9;

constexpr char kSchema[] = R"sql(
CREATE TABLE held_releases (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  vendor          TEXT NOT NULL,
  round_id        TEXT NOT NULL,
  request_sha256  TEXT NOT NULL,
  summary         TEXT NOT NULL,
  epsilon_nano    INTEGER NOT NULL CHECK (epsilon_nano >= 0),
  release         BLOB NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ('held', 'approved', 'sent', 'declined')),
  held_utc        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  decided_utc     TEXT,
  sent_utc        TEXT,
  UNIQUE (vendor, round_id)
);
)sql";

// What a held release was computed from, for `releases show ID --local` (evaluation_fingerprint.h):
// the request itself and the digest of the exact aggregate. Local only; added beside the table
// above (not in it) so that files made before it keep schema version 1 and simply lack the row.
constexpr char kEvidenceSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS held_release_evidence (
  id                 INTEGER PRIMARY KEY REFERENCES held_releases (id),
  request            BLOB NOT NULL,
  evaluation_sha256  TEXT NOT NULL
);
)sql";

constexpr char kColumns[] =
    "h.id, h.vendor, h.round_id, h.request_sha256, h.summary, h.epsilon_nano, h.release, "
    "h.state, h.held_utc, h.decided_utc, h.sent_utc, e.request, e.evaluation_sha256";
constexpr char kFrom[] = " FROM held_releases h LEFT JOIN held_release_evidence e ON e.id = h.id";

HeldState StateFrom(const std::string& s) {
  if (s == "approved") return HeldState::kApproved;
  if (s == "sent") return HeldState::kSent;
  if (s == "declined") return HeldState::kDeclined;
  return HeldState::kHeld;
}

HeldRelease RowOf(const sqlite::Statement& q) {
  HeldRelease r;
  r.id = q.Int(0);
  r.vendor = q.Text(1);
  r.round_id = q.Text(2);
  r.request_sha256 = q.Text(3);
  r.summary = q.Text(4);
  r.epsilon = static_cast<double>(q.Int(5)) / kNanoPerEpsilon;
  r.release_bytes = std::string(q.Blob(6));
  r.state = StateFrom(q.Text(7));
  r.held_utc = q.Text(8);
  r.decided_utc = q.OptionalText(9).value_or("");
  r.sent_utc = q.OptionalText(10).value_or("");
  if (q.OptionalText(12).has_value()) {
    r.request_bytes = std::string(q.Blob(11));
    r.evaluation_sha256 = *q.OptionalText(12);
  }
  return r;
}

}  // namespace

const char* HeldStateName(HeldState state) {
  switch (state) {
    case HeldState::kHeld:
      return "held";
    case HeldState::kApproved:
      return "approved";
    case HeldState::kSent:
      return "sent";
    case HeldState::kDeclined:
      return "declined";
  }
  return "held";
}

absl::StatusOr<std::unique_ptr<HeldReleaseStore>> HeldReleaseStore::Open(const std::string& path,
                                                                         OpenMode mode) {
  sqlite::OpenOptions options;
  options.create_if_missing = mode == OpenMode::kCreateIfMissing;
  ASSIGN_OR_RETURN(sqlite3 * db,
                   sqlite::OpenWithSchema(path, options, kHeldApplicationId, kHeldSchemaVersion,
                                          kSchema, "a held-releases store"));
  if (absl::Status s = sqlite::Exec(db, kEvidenceSchema); !s.ok()) {
    sqlite::Close(db);
    return s;
  }
  return std::unique_ptr<HeldReleaseStore>(new HeldReleaseStore(path, db));
}

HeldReleaseStore::~HeldReleaseStore() { sqlite::Close(db_); }

absl::StatusOr<std::optional<HeldRelease>> HeldReleaseStore::FindWhere(std::string_view where,
                                                                       std::string_view a,
                                                                       std::string_view b,
                                                                       int64_t id) const {
  ASSIGN_OR_RETURN(sqlite::Statement q,
                   sqlite::Statement::Prepare(db_, absl::StrCat("SELECT ", kColumns, kFrom,
                                                                " WHERE ", std::string(where))));
  if (id > 0) {
    q.Bind(1, id);
  } else {
    q.Bind(1, a).Bind(2, b);
  }
  ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<HeldRelease>();
  return std::optional<HeldRelease>(RowOf(q));
}

absl::StatusOr<std::optional<HeldRelease>> HeldReleaseStore::Find(std::string_view vendor,
                                                                  std::string_view round_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return FindWhere("h.vendor = ?1 AND h.round_id = ?2", vendor, round_id, 0);
}

absl::StatusOr<std::optional<HeldRelease>> HeldReleaseStore::Get(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (id <= 0) return std::optional<HeldRelease>();
  return FindWhere("h.id = ?1", "", "", id);
}

absl::StatusOr<std::vector<HeldRelease>> HeldReleaseStore::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      sqlite::Statement q,
      sqlite::Statement::Prepare(db_, absl::StrCat("SELECT ", kColumns, kFrom, " ORDER BY h.id")));
  std::vector<HeldRelease> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(RowOf(q));
  }
  return out;
}

absl::StatusOr<HeldRelease> HeldReleaseStore::Hold(const HeldRelease& release) {
  if (!(release.epsilon >= 0) || !std::isfinite(release.epsilon)) {
    return absl::InvalidArgumentError("held release: epsilon must be finite and >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Transaction> tx, sqlite::Transaction::Begin(db_));
  ASSIGN_OR_RETURN(
      std::optional<HeldRelease> existing,
      FindWhere("h.vendor = ?1 AND h.round_id = ?2", release.vendor, release.round_id, 0));
  if (existing.has_value()) {
    if (existing->request_sha256 == release.request_sha256) return *existing;
    return absl::AlreadyExistsError(
        absl::StrCat("round_id '", release.round_id,
                     "' was already used by this vendor for a different request"));
  }
  ASSIGN_OR_RETURN(
      sqlite::Statement insert,
      sqlite::Statement::Prepare(
          db_,
          "INSERT INTO held_releases (vendor, round_id, request_sha256, summary, epsilon_nano, "
          "release, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'held')"));
  insert.Bind(1, release.vendor)
      .Bind(2, release.round_id)
      .Bind(3, release.request_sha256)
      .Bind(4, release.summary)
      .Bind(5, static_cast<int64_t>(std::llround(release.epsilon * kNanoPerEpsilon)))
      .BindBlob(6, release.release_bytes.data(), release.release_bytes.size());
  RETURN_IF_ERROR(insert.Run());
  if (!release.evaluation_sha256.empty()) {
    ASSIGN_OR_RETURN(
        sqlite::Statement evidence,
        sqlite::Statement::Prepare(
            db_,
            "INSERT INTO held_release_evidence (id, request, evaluation_sha256) "
            "SELECT id, ?3, ?4 FROM held_releases WHERE vendor = ?1 AND round_id = ?2"));
    evidence.Bind(1, release.vendor)
        .Bind(2, release.round_id)
        .BindBlob(3, release.request_bytes.data(), release.request_bytes.size())
        .Bind(4, release.evaluation_sha256);
    RETURN_IF_ERROR(evidence.Run());
  }
  ASSIGN_OR_RETURN(
      std::optional<HeldRelease> stored,
      FindWhere("h.vendor = ?1 AND h.round_id = ?2", release.vendor, release.round_id, 0));
  RETURN_IF_ERROR(tx->Commit());
  if (!stored.has_value()) return absl::InternalError(absl::StrCat(path_, ": held row vanished"));
  return *stored;
}

absl::Status HeldReleaseStore::Transition(int64_t id, std::string_view to,
                                          std::string_view allowed_from,
                                          std::string_view time_column) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::Transaction> tx, sqlite::Transaction::Begin(db_));
  ASSIGN_OR_RETURN(std::optional<HeldRelease> row, FindWhere("h.id = ?1", "", "", id));
  if (!row.has_value()) return absl::NotFoundError(absl::StrCat("no held release with id ", id));
  const std::string state = HeldStateName(row->state);
  if (state == to) return absl::OkStatus();
  if (allowed_from.find(absl::StrCat(",", state, ",")) == std::string_view::npos) {
    return absl::FailedPreconditionError(
        absl::StrCat("release ", id, " is ", state, "; it cannot become ", std::string(to)));
  }
  ASSIGN_OR_RETURN(
      sqlite::Statement update,
      sqlite::Statement::Prepare(
          db_, absl::StrCat("UPDATE held_releases SET state = ?1, ", std::string(time_column),
                            " = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?2")));
  update.Bind(1, to).Bind(2, id);
  RETURN_IF_ERROR(update.Run());
  return tx->Commit();
}

absl::Status HeldReleaseStore::MarkApproved(int64_t id) {
  return Transition(id, "approved", ",held,", "decided_utc");
}

absl::Status HeldReleaseStore::MarkDeclined(int64_t id) {
  return Transition(id, "declined", ",held,", "decided_utc");
}

absl::Status HeldReleaseStore::MarkSent(int64_t id) {
  return Transition(id, "sent", ",held,approved,", "sent_utc");
}

}  // namespace fedface::partner
