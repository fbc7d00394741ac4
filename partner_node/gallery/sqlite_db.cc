#include "partner_node/gallery/sqlite_db.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner::sqlite {
namespace {

std::string FileName(sqlite3* db) {
  const char* name = db ? sqlite3_db_filename(db, "main") : nullptr;
  return name && *name ? name : "(sqlite)";
}

}  // namespace

absl::Status Error(sqlite3* db, std::string_view what) {
  const int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
  std::string message = absl::StrCat(FileName(db), ": ", std::string(what), ": ",
                                     db ? sqlite3_errmsg(db) : "no database");
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return absl::UnavailableError(message);
  if (code == SQLITE_CONSTRAINT) return absl::AlreadyExistsError(message);
  if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT) return absl::DataLossError(message);
  return absl::InternalError(message);
}

absl::Status InternalUnlessBusy(const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(
      s.code() == absl::StatusCode::kUnavailable ? s.code() : absl::StatusCode::kInternal,
      s.message());
}

absl::StatusOr<sqlite3*> Open(const std::string& path, const OpenOptions& options) {
  struct stat st;
  if (!options.create_if_missing && ::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no such database file"));
  }
  sqlite3* db = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | (options.create_if_missing ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string reason = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat(path, ": cannot open database: ", reason));
  }
  sqlite3_extended_result_codes(db, 0);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  // journal_mode is the first statement that reads the file, so "not a database" surfaces here.
  absl::Status s = Exec(db,
                        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                        "PRAGMA foreign_keys=ON;");
  if (!s.ok()) {
    sqlite3_close(db);
    return absl::Status(s.code(), absl::StrCat(path, ": not a usable database: ", s.message()));
  }
  return db;
}

void Close(sqlite3* db) {
  if (db) sqlite3_close_v2(db);
}

absl::Status Exec(sqlite3* db, std::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string reason = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    absl::Status base = Error(db, "exec");
    return absl::Status(base.code(), absl::StrCat(FileName(db), ": ", reason));
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<int64_t> QueryInt(sqlite3* db, std::string_view sql) {
  ASSIGN_OR_RETURN(auto stmt, Statement::Prepare(db, sql));
  ASSIGN_OR_RETURN(auto row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

}  // namespace

absl::Status EnsureSchema(sqlite3* db, int application_id, int schema_version,
                          std::string_view schema_sql, std::string_view what, bool may_create) {
  const std::string file = FileName(db);
  auto check = [&]() -> absl::StatusOr<bool> {  // true: already set up
    ASSIGN_OR_RETURN(auto id, QueryInt(db, "PRAGMA application_id"));
    if (id == 0) {
      ASSIGN_OR_RETURN(auto tables, QueryInt(db, "SELECT count(*) FROM sqlite_master"));
      if (tables != 0 || !may_create) {
        return absl::FailedPreconditionError(absl::StrCat(file, ": not ", std::string(what)));
      }
      return false;
    }
    if (id != application_id) {
      return absl::FailedPreconditionError(absl::StrCat(file, ": not ", std::string(what)));
    }
    ASSIGN_OR_RETURN(auto version, QueryInt(db, "PRAGMA user_version"));
    if (version != schema_version) {
      return absl::FailedPreconditionError(
          absl::StrCat(file, ": ", std::string(what), " with schema version ", version,
                       ", this build reads version ", schema_version));
    }
    return true;
  };
  auto ready = check();
  if (!ready.ok() || *ready) return ready.status();
  ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db));
  ready = check();  // another process may have created it meanwhile
  if (!ready.ok() || *ready) return ready.status();
  RETURN_IF_ERROR(Exec(db, schema_sql));
  RETURN_IF_ERROR(Exec(db, absl::StrCat("PRAGMA application_id=", application_id,
                                        "; PRAGMA user_version=", schema_version, ";")));
  return tx->Commit();
}

absl::StatusOr<sqlite3*> OpenWithSchema(const std::string& path, const OpenOptions& options,
                                        int application_id, int schema_version,
                                        std::string_view schema_sql, std::string_view what) {
  ASSIGN_OR_RETURN(sqlite3 * db, Open(path, options));
  if (absl::Status s = EnsureSchema(db, application_id, schema_version, schema_sql, what,
                                    options.create_if_missing);
      !s.ok()) {
    Close(db);
    return s;
  }
  return db;
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) !=
      SQLITE_OK) {
    return Error(db, absl::StrCat("prepare '", std::string(sql.substr(0, 60)), "'"));
  }
  return Statement(db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), bind_error_(other.bind_error_) {}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::Bind(int index, int64_t value) {
  const int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  const int rc =
      sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = rc;
  return *this;
}

Statement& Statement::BindBlob(int index, const void* data, size_t size) {
  const int rc = sqlite3_bind_blob(stmt_, index, data, static_cast<int>(size), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = rc;
  return *this;
}

Statement& Statement::BindNull(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && !bind_error_) bind_error_ = rc;
  return *this;
}

Statement& Statement::Bind(int index, const std::optional<std::string>& text) {
  return text ? Bind(index, std::string_view(*text)) : BindNull(index);
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_error_) {
    return absl::InternalError(
        absl::StrCat(FileName(db_), ": bind: ", sqlite3_errstr(bind_error_)));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return Error(db_, "step");
}

absl::Status Statement::Run() { return Step().status(); }

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = 0;
}

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Statement::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, sqlite3_column_bytes(stmt_, col)) : std::string();
}

std::optional<std::string> Statement::OptionalText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

std::string_view Statement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col))
           : std::string_view();
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

absl::StatusOr<std::unique_ptr<Transaction>> Transaction::Begin(sqlite3* db) {
  RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE"));
  return std::unique_ptr<Transaction>(new Transaction(db));
}

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

absl::Status Transaction::Commit() {
  absl::Status s = Exec(db_, "COMMIT");
  if (s.ok()) done_ = true;
  return s;
}

}  // namespace fedface::partner::sqlite
