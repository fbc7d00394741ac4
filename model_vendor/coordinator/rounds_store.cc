#include "model_vendor/coordinator/rounds_store.h"

#include <sqlite3.h>

#include <charconv>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/wire/protocol_names.h"
#include "model_vendor/coordinator/release_check.h"

namespace fedface::vendor {
namespace {

constexpr int kApplicationId = 0x66666372;  // "ffcr": fedface coordinator rounds
constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE rounds(
  round_id TEXT PRIMARY KEY,
  model_version TEXT NOT NULL,
  protocol TEXT NOT NULL,
  seed TEXT NOT NULL,
  non_mated_sample_size INTEGER NOT NULL,
  quorum INTEGER NOT NULL,
  target_fmr REAL NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  runs INTEGER NOT NULL);
CREATE TABLE outcomes(
  round_id TEXT NOT NULL REFERENCES rounds(round_id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  partner TEXT NOT NULL,
  address TEXT NOT NULL,
  certificate_name TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT NOT NULL,
  grpc_code TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  elapsed_ms INTEGER NOT NULL,
  requests_sent INTEGER NOT NULL,
  request_bytes INTEGER NOT NULL,
  messages_received INTEGER NOT NULL,
  bytes_received INTEGER NOT NULL,
  release BLOB,
  PRIMARY KEY(round_id, partner));
)sql";

// One prepared statement; finalized on destruction.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return rc_ == SQLITE_OK || rc_ == SQLITE_ROW || rc_ == SQLITE_DONE; }
  Stmt& Bind(int i, int64_t v) {
    Keep(sqlite3_bind_int64(stmt_, i, v));
    return *this;
  }
  Stmt& Bind(int i, double v) {
    Keep(sqlite3_bind_double(stmt_, i, v));
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    Keep(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    Keep(sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& BindNull(int i) {
    Keep(sqlite3_bind_null(stmt_, i));
    return *this;
  }
  // true: a row; false: done or error (check ok()).
  bool Step() {
    if (!ok() || stmt_ == nullptr) return false;
    rc_ = sqlite3_step(stmt_);
    return rc_ == SQLITE_ROW;
  }
  int64_t Int(int c) const { return sqlite3_column_int64(stmt_, c); }
  double Double(int c) const { return sqlite3_column_double(stmt_, c); }
  bool IsNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string Text(int c) const {
    const unsigned char* t = sqlite3_column_text(stmt_, c);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
             : std::string();
  }
  std::string Blob(int c) const {
    const void* b = sqlite3_column_blob(stmt_, c);
    return b ? std::string(static_cast<const char*>(b),
                           static_cast<std::size_t>(sqlite3_column_bytes(stmt_, c)))
             : std::string();
  }

 private:
  void Keep(int rc) {
    if (rc != SQLITE_OK && ok()) rc_ = rc;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

int64_t PragmaInt(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  return s.Step() ? s.Int(0) : -1;
}

}  // namespace

absl::Status RoundsStore::Error(const std::string& what) const {
  return absl::InternalError(absl::StrCat(path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::StatusOr<std::unique_ptr<RoundsStore>> RoundsStore::Open(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot open the rounds database: ", message));
  }
  std::unique_ptr<RoundsStore> store(new RoundsStore(db, path));
  sqlite3_busy_timeout(db, 10000);
  if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                   nullptr, nullptr, nullptr) != SQLITE_OK) {
    return store->Error("not a usable SQLite database");
  }
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return store->Error("cannot lock the rounds database");
  }
  const int64_t app = PragmaInt(db, "PRAGMA application_id");
  const int64_t version = PragmaInt(db, "PRAGMA user_version");
  const int64_t tables = PragmaInt(db, "SELECT count(*) FROM sqlite_master");
  absl::Status status;
  if (app == 0 && version == 0 && tables == 0) {
    const std::string create = absl::StrCat(kSchema, "PRAGMA application_id=", kApplicationId,
                                            "; PRAGMA user_version=", kSchemaVersion, ";");
    if (sqlite3_exec(db, create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      status = store->Error("creating the rounds tables");
    }
  } else if (app != kApplicationId) {
    status = absl::FailedPreconditionError(
        absl::StrCat(path, ": not a fedface rounds database (another program's SQLite file?)"));
  } else if (version != kSchemaVersion) {
    status = absl::FailedPreconditionError(absl::StrCat(path, ": rounds database schema version ",
                                                        version, ", this build reads version ",
                                                        kSchemaVersion));
  }
  if (!status.ok()) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return store->Error("creating the rounds tables");
  }
  return store;
}

RoundsStore::~RoundsStore() { sqlite3_close(db_); }

absl::StatusOr<int> RoundsStore::BeginRound(const RoundRecord& round) {
  const RoundRequest& r = round.request;
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error("cannot lock the rounds database");
  }
  const auto fail = [&](absl::Status s) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return s;
  };
  int runs = 1;
  {
    Stmt q(db_,
           "SELECT model_version, protocol, seed, non_mated_sample_size, runs FROM rounds "
           "WHERE round_id = ?");
    q.Bind(1, r.round_id);
    if (q.Step()) {
      const auto differs = [&](const char* field, const std::string& stored,
                               const std::string& now) {
        return absl::FailedPreconditionError(absl::StrCat(
            "round ", r.round_id, " was run with ", field, " ", stored, "; this run asks for ", now,
            " (a round id names one request: use a new round id)"));
      };
      if (q.Text(0) != r.model_version) {
        return fail(differs("model version", q.Text(0), r.model_version));
      }
      if (q.Text(1) != ProtocolName(r.protocol)) {
        return fail(differs("protocol", q.Text(1), ProtocolName(r.protocol)));
      }
      if (q.Text(2) != absl::StrCat(r.seed)) {
        return fail(differs("seed", q.Text(2), absl::StrCat(r.seed)));
      }
      if (q.Int(3) != static_cast<int64_t>(r.non_mated_sample_size)) {
        return fail(differs("coordinator.non_mated_sample_size", absl::StrCat(q.Int(3)),
                            absl::StrCat(r.non_mated_sample_size)));
      }
      runs = static_cast<int>(q.Int(4)) + 1;
    } else if (!q.ok()) {
      return fail(Error("reading the rounds table"));
    }
  }
  Stmt drop(db_, "DELETE FROM outcomes WHERE round_id = ?");
  drop.Bind(1, r.round_id).Step();
  Stmt up(db_,
          "INSERT INTO rounds(round_id, model_version, protocol, seed, non_mated_sample_size, "
          "quorum, target_fmr, started_at, finished_at, runs) VALUES(?,?,?,?,?,?,?,?,NULL,?) "
          "ON CONFLICT(round_id) DO UPDATE SET quorum=excluded.quorum, "
          "target_fmr=excluded.target_fmr, started_at=excluded.started_at, finished_at=NULL, "
          "runs=excluded.runs");
  up.Bind(1, r.round_id)
      .Bind(2, r.model_version)
      .Bind(3, std::string(ProtocolName(r.protocol)))
      .Bind(4, absl::StrCat(r.seed))
      .Bind(5, static_cast<int64_t>(r.non_mated_sample_size))
      .Bind(6, static_cast<int64_t>(round.quorum))
      .Bind(7, round.target_fmr)
      .Bind(8, round.started_at)
      .Bind(9, static_cast<int64_t>(runs));
  up.Step();
  if (!drop.ok() || !up.ok()) return fail(Error("recording the round"));
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail(Error("recording the round"));
  }
  return runs;
}

absl::Status RoundsStore::SaveOutcome(const std::string& round_id, int position,
                                      const PartnerOutcome& o) {
  Stmt s(db_,
         "INSERT OR REPLACE INTO outcomes(round_id, position, partner, address, certificate_name, "
         "status, reason, grpc_code, attempts, elapsed_ms, requests_sent, request_bytes, "
         "messages_received, bytes_received, release) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  s.Bind(1, round_id)
      .Bind(2, static_cast<int64_t>(position))
      .Bind(3, o.partner.name)
      .Bind(4, o.partner.address)
      .Bind(5, o.partner.certificate_name)
      .Bind(6, std::string(PartnerStatusName(o.status)))
      .Bind(7, o.reason)
      .Bind(8, o.grpc_code)
      .Bind(9, static_cast<int64_t>(o.attempts))
      .Bind(10, o.elapsed_ms)
      .Bind(11, o.egress.requests_sent)
      .Bind(12, o.egress.request_bytes)
      .Bind(13, o.egress.messages_received)
      .Bind(14, o.egress.bytes_received);
  if (o.release) {
    std::string bytes;
    o.release->SerializeToString(&bytes);
    s.BindBlob(15, bytes);
  } else {
    s.BindNull(15);
  }
  s.Step();
  if (!s.ok())
    return Error(absl::StrCat("saving partner ", o.partner.name, " of round ", round_id));
  return absl::OkStatus();
}

absl::Status RoundsStore::FinishRound(const std::string& round_id, const std::string& finished_at) {
  Stmt s(db_, "UPDATE rounds SET finished_at = ? WHERE round_id = ?");
  s.Bind(1, finished_at).Bind(2, round_id);
  s.Step();
  if (!s.ok()) return Error(absl::StrCat("finishing round ", round_id));
  if (sqlite3_changes(db_) != 1) {
    return absl::NotFoundError(absl::StrCat(path_, ": no round ", round_id));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RoundRecord>> RoundsStore::Load(const std::string& round_id) {
  RoundRecord record;
  {
    Stmt q(db_,
           "SELECT model_version, protocol, seed, non_mated_sample_size, quorum, target_fmr, "
           "started_at, finished_at, runs FROM rounds WHERE round_id = ?");
    q.Bind(1, round_id);
    if (!q.Step()) {
      if (!q.ok()) return Error(absl::StrCat("reading round ", round_id));
      return std::optional<RoundRecord>();
    }
    RoundRequest& r = record.request;
    r.round_id = round_id;
    r.model_version = q.Text(0);
    const std::optional<fedface::v1::EvaluationProtocol> protocol = ProtocolFromName(q.Text(1));
    const std::string seed = q.Text(2);
    const auto [ptr, ec] = std::from_chars(seed.data(), seed.data() + seed.size(), r.seed);
    if (!protocol || ec != std::errc() || ptr != seed.data() + seed.size()) {
      return absl::DataLossError(absl::StrCat(path_, ": round ", round_id, " is damaged"));
    }
    r.protocol = *protocol;
    r.non_mated_sample_size = static_cast<uint64_t>(q.Int(3));
    record.quorum = static_cast<int>(q.Int(4));
    record.target_fmr = q.Double(5);
    record.started_at = q.Text(6);
    record.finished_at = q.IsNull(7) ? "" : q.Text(7);
    record.runs = static_cast<int>(q.Int(8));
  }
  Stmt q(db_,
         "SELECT partner, address, certificate_name, status, reason, grpc_code, attempts, "
         "elapsed_ms, requests_sent, request_bytes, messages_received, bytes_received, release "
         "FROM outcomes WHERE round_id = ? ORDER BY position");
  q.Bind(1, round_id);
  while (q.Step()) {
    PartnerOutcome o;
    o.partner = {q.Text(0), q.Text(1), q.Text(2)};
    const std::optional<PartnerStatus> status = PartnerStatusFromName(q.Text(3));
    if (!status) {
      return absl::DataLossError(absl::StrCat(path_, ": round ", round_id, " partner ",
                                              o.partner.name, ": unknown status ", q.Text(3)));
    }
    o.status = *status;
    o.reason = q.Text(4);
    o.grpc_code = q.Text(5);
    o.attempts = static_cast<int>(q.Int(6));
    o.elapsed_ms = q.Int(7);
    o.egress = {q.Int(8), q.Int(9), q.Int(10), q.Int(11)};
    if (!q.IsNull(12)) {
      fedface::v1::EvaluationRelease release;
      if (!release.ParseFromString(q.Blob(12))) {
        return absl::DataLossError(absl::StrCat(path_, ": round ", round_id, " partner ",
                                                o.partner.name, ": stored release does not parse"));
      }
      if (absl::Status s = CheckRelease(release, record.request); !s.ok()) {
        return absl::DataLossError(absl::StrCat(path_, ": round ", round_id, " partner ",
                                                o.partner.name, ": ", s.message()));
      }
      o.release = std::move(release);
    }
    record.outcomes.push_back(std::move(o));
  }
  if (!q.ok()) return Error(absl::StrCat("reading the outcomes of round ", round_id));
  return std::optional<RoundRecord>(std::move(record));
}

absl::StatusOr<std::vector<RoundSummary>> RoundsStore::List() {
  Stmt q(db_,
         "SELECT r.round_id, r.model_version, r.protocol, r.started_at, r.finished_at, r.quorum, "
         "r.runs, (SELECT count(*) FROM outcomes o WHERE o.round_id = r.round_id), "
         "(SELECT count(*) FROM outcomes o WHERE o.round_id = r.round_id AND "
         "o.status = 'contributed') FROM rounds r ORDER BY r.started_at DESC, r.round_id DESC");
  std::vector<RoundSummary> out;
  while (q.Step()) {
    RoundSummary s;
    s.round_id = q.Text(0);
    s.model_version = q.Text(1);
    s.protocol = q.Text(2);
    s.started_at = q.Text(3);
    s.finished_at = q.IsNull(4) ? "" : q.Text(4);
    s.quorum = static_cast<int>(q.Int(5));
    s.runs = static_cast<int>(q.Int(6));
    s.partners = static_cast<int>(q.Int(7));
    s.contributed = static_cast<int>(q.Int(8));
    if (s.finished_at.empty()) {
      s.state = "running";
    } else {
      s.state = s.contributed >= s.quorum ? "complete" : "quorum_not_met";
    }
    out.push_back(std::move(s));
  }
  if (!q.ok()) return Error("listing rounds");
  return out;
}

}  // namespace fedface::vendor
