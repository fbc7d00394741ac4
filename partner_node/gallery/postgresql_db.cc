#include "partner_node/gallery/postgresql_db.h"

#include <endian.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace fedface::partner::pg {
namespace {

constexpr char kSqlStatePayload[] = "fedface.postgresql.sqlstate";

absl::StatusCode CodeOf(const std::string& sqlstate) {
  if (absl::StartsWith(sqlstate, "08")) return absl::StatusCode::kUnavailable;  // connection
  if (absl::StartsWith(sqlstate, "28") || sqlstate == "42501") {
    return absl::StatusCode::kPermissionDenied;  // authentication, insufficient privilege
  }
  if (absl::StartsWith(sqlstate, "53") || absl::StartsWith(sqlstate, "57")) {
    return absl::StatusCode::kUnavailable;  // resources, operator intervention (shutdown)
  }
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::StatusCode::kAborted;
  return absl::StatusCode::kInternal;
}

std::string Trimmed(const char* message) {
  return std::string(absl::StripTrailingAsciiWhitespace(message ? message : ""));
}

}  // namespace

Params& Params::Text(std::string_view value) {
  values_.emplace_back(std::string(value));
  lengths_.push_back(static_cast<int>(value.size()));
  formats_.push_back(0);
  return *this;
}

Params& Params::Int(int64_t value) { return Text(std::to_string(value)); }

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  lengths_.push_back(0);
  formats_.push_back(0);
  return *this;
}

Params& Params::Bytes(const void* data, size_t size) {
  values_.emplace_back(std::string(static_cast<const char*>(data), size));
  lengths_.push_back(static_cast<int>(size));
  formats_.push_back(1);
  return *this;
}

const char* const* Params::values() const {
  pointers_.clear();
  for (const auto& v : values_) pointers_.push_back(v ? v->data() : nullptr);
  return pointers_.data();
}

int64_t Result::Int(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  if (PQgetlength(r_.get(), row, col) != 8) return 0;  // NULL, or not a bigint column
  uint64_t be = 0;
  std::memcpy(&be, v, 8);
  return static_cast<int64_t>(be64toh(be));
}

std::string Result::Text(int row, int col) const { return std::string(Bytes(row, col)); }

std::string_view Result::Bytes(int row, int col) const {
  return std::string_view(PQgetvalue(r_.get(), row, col),
                          static_cast<size_t>(PQgetlength(r_.get(), row, col)));
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo,
                                                             const std::string& location) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError(location + ": out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    // libpq gives no SQLSTATE for a failed connection; its message says which case it is.
    const bool denied = absl::StrContains(why, "authentication failed") ||
                        absl::StrContains(why, "permission denied") ||
                        absl::StrContains(why, "no password supplied") ||
                        absl::StrContains(why, "no pg_hba.conf entry");
    const std::string text = absl::StrCat(location, ": cannot connect: ", why);
    if (absl::StrContains(why, "does not exist")) return absl::NotFoundError(text);
    return denied ? absl::PermissionDeniedError(text) : absl::UnavailableError(text);
  }
  // Quiet: NOTICEs (e.g. "relation already exists, skipping") are not errors.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, location));
}

Connection::~Connection() { PQfinish(conn_); }

absl::Status Connection::ErrorOf(const PGresult* r, std::string_view sql) const {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string why = Trimmed(r ? PQresultErrorMessage(r) : PQerrorMessage(conn_));
  if (why.empty()) why = Trimmed(PQerrorMessage(conn_));
  // A lost connection has no SQLSTATE; it is the server going away.
  // No SQLSTATE: libpq itself failed, the connection is gone (PQstatus may only say so at the
  // next read, e.g. after a failed write): the next statement outside a transaction reconnects.
  if (state == nullptr) lost_ = true;
  const absl::StatusCode code = state ? CodeOf(state) : absl::StatusCode::kUnavailable;
  std::string first_words(sql.substr(sql.find_first_not_of(" \n")));
  first_words.resize(std::min(first_words.find_first_of("(\n"), first_words.size()));
  absl::Status status(code, absl::StrCat(location_, ": ", first_words, ": ", why));
  if (state) status.SetPayload(kSqlStatePayload, absl::Cord(state));
  return status;
}

void Connection::ReconnectIfLost() const {
  if (in_transaction_ || (!lost_ && PQstatus(conn_) != CONNECTION_BAD)) return;
  PQreset(conn_);
  lost_ = PQstatus(conn_) != CONNECTION_OK;
}

absl::StatusOr<Result> Connection::Exec(std::string_view sql, const Params& params) const {
  ReconnectIfLost();
  const std::string text(sql);
  PGresult* r = PQexecParams(conn_, text.c_str(), params.size(), nullptr, params.values(),
                             params.lengths(), params.formats(), 1);
  Result result(r);
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(r, sql);
  return result;
}

absl::Status Connection::ExecScript(std::string_view sql) const {
  ReconnectIfLost();
  const std::string text(sql);
  Result result(PQexec(conn_, text.c_str()));
  const PGresult* r = result.get();
  const ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return ErrorOf(r, sql);
  return absl::OkStatus();
}

absl::Status Connection::Stream(std::string_view sql, const Params& params,
                                const std::function<absl::Status(const Result&)>& fn) const {
  ReconnectIfLost();
  const std::string text(sql);
  if (!PQsendQueryParams(conn_, text.c_str(), params.size(), nullptr, params.values(),
                         params.lengths(), params.formats(), 1) ||
      !PQsetSingleRowMode(conn_)) {
    return ErrorOf(nullptr, sql);
  }
  absl::Status outcome = absl::OkStatus();
  while (PGresult* r = PQgetResult(conn_)) {
    Result result(r);
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_SINGLE_TUPLE) {
      if (outcome.ok()) outcome = fn(result);  // after an error, drain the rest unread
    } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && outcome.ok()) {
      outcome = ErrorOf(r, sql);
    }
  }
  return outcome;
}

absl::StatusOr<std::unique_ptr<Transaction>> Transaction::Begin(const Connection& conn) {
  if (absl::StatusOr<Result> r = conn.Exec("BEGIN"); !r.ok()) return r.status();
  conn.in_transaction_ = true;
  return std::unique_ptr<Transaction>(new Transaction(conn));
}

Transaction::~Transaction() {
  if (!done_) (void)conn_.Exec("ROLLBACK");
  conn_.in_transaction_ = false;
}

absl::Status Transaction::Commit() {
  absl::StatusOr<Result> r = conn_.Exec("COMMIT");
  done_ = true;  // a failed COMMIT has rolled back already
  conn_.in_transaction_ = false;
  return r.status();
}

std::string SqlState(const absl::Status& status) {
  absl::optional<absl::Cord> state = status.GetPayload(kSqlStatePayload);
  return state ? std::string(*state) : std::string();
}

}  // namespace fedface::partner::pg
