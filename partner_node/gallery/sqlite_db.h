// Thin RAII over the SQLite C API for the partner's stores (gallery, egress ledger): open with the
// durability settings they need, prepared statements, and IMMEDIATE transactions that roll back
// unless committed. Errors are absl::Status values naming the database file and SQLite's reason.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fedface::partner::sqlite {

struct OpenOptions {
  bool create_if_missing = true;  // false: a missing file is NotFound
  int busy_timeout_ms = 10000;    // waits for another process's write lock instead of failing
};

// Opens `path` with WAL journaling, synchronous=FULL (every commit fsynced) and foreign keys on.
// Fails naming the file. The caller owns the handle (Close).
absl::StatusOr<sqlite3*> Open(const std::string& path, const OpenOptions& options);
void Close(sqlite3* db);

// Runs one or more statements without results.
absl::Status Exec(sqlite3* db, std::string_view sql);

// An error for the last failure on db: "<file>: <what>: <sqlite message>".
absl::Status Error(sqlite3* db, std::string_view what);

// For stores whose own status codes carry decisions (a budget's RESOURCE_EXHAUSTED, a release's
// ALREADY_EXISTS): any SQLite failure becomes INTERNAL, or UNAVAILABLE when busy, so that such a
// code only ever means the decision its header documents. OK passes through.
absl::Status InternalUnlessBusy(const absl::Status& s);

// Makes sure `db` is `what` (e.g. "a gallery store"): PRAGMA application_id must be
// application_id and user_version must be schema_version. A brand-new empty file gets schema_sql
// and both pragmas in one IMMEDIATE transaction when may_create, so two processes opening the
// same new file cannot both create it. Fails naming the file: "not <what>", or "<what> with schema
// version N, this build reads version M".
absl::Status EnsureSchema(sqlite3* db, int application_id, int schema_version,
                          std::string_view schema_sql, std::string_view what, bool may_create);

// Open(path, options) then EnsureSchema(..., may_create = options.create_if_missing); the
// connection is closed again when the schema check fails. The caller owns the handle (Close).
absl::StatusOr<sqlite3*> OpenWithSchema(const std::string& path, const OpenOptions& options,
                                        int application_id, int schema_version,
                                        std::string_view schema_sql, std::string_view what);

// One prepared statement. Bind indexes start at 1, column indexes at 0, like SQLite's.
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, std::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const std::string& text) {
    return Bind(index, std::string_view(text));
  }
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& BindBlob(int index, const void* data, size_t size);
  Statement& BindNull(int index);
  Statement& Bind(int index, const std::optional<std::string>& text);

  // true: a row is available; false: done. Errors (including a bind error) name the file.
  absl::StatusOr<bool> Step();
  // Steps a statement that returns no rows.
  absl::Status Run();
  // Clears bindings and rewinds, for reuse.
  void Reset();

  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::optional<std::string> OptionalText(int col) const;  // nullopt for NULL
  std::string_view Blob(int col) const;
  bool IsNull(int col) const;

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int bind_error_ = 0;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so a read-then-write inside it
// cannot race another writer); ROLLBACK on destruction unless Commit() succeeded.
class Transaction {
 public:
  static absl::StatusOr<std::unique_ptr<Transaction>> Begin(sqlite3* db);
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  bool done_ = false;
};

}  // namespace fedface::partner::sqlite
