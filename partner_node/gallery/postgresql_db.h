// Thin RAII over libpq for the PostgreSQL gallery store: a connection, parameterised statements
// with binary results, transactions that roll back unless committed, and errors as absl::Status
// values that name the store and map SQLSTATE classes to codes an operator can act on
// (unreachable server: Unavailable; missing privilege or failed authentication: PermissionDenied).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface::partner::pg {

// Statement parameters: text values (integers as decimal text) and binary blobs (bytea).
class Params {
 public:
  Params& Text(std::string_view value);
  Params& Int(int64_t value);
  Params& Null();
  Params& Bytes(const void* data, size_t size);
  Params& OptionalText(const std::optional<std::string>& value) {
    return value ? Text(std::string_view(*value)) : Null();
  }

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const;
  const int* lengths() const { return lengths_.data(); }
  const int* formats() const { return formats_.data(); }

 private:
  std::vector<std::optional<std::string>> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
  mutable std::vector<const char*> pointers_;
};

// A result in binary format. Integer columns must be bigint (cast with ::bigint in the query).
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  int64_t Int(int row, int col) const;
  std::string Text(int row, int col) const;
  std::string_view Bytes(int row, int col) const;
  const PGresult* get() const { return r_.get(); }
  std::optional<std::string> OptionalText(int row, int col) const {
    return IsNull(row, col) ? std::nullopt : std::optional<std::string>(Text(row, col));
  }

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

// A connection lost (the server restarted, a network cut) is re-established by the next statement
// issued outside a transaction: the statement that met the loss fails (Unavailable), the next one
// reconnects. Inside a transaction nothing reconnects: its remaining statements fail and it rolls
// back, as the server already did.
class Connection {
 public:
  // Connects with `conninfo`; `location` names the store in every error.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo,
                                                          const std::string& location);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement; results in binary format.
  absl::StatusOr<Result> Exec(std::string_view sql, const Params& params = Params()) const;
  // Runs several statements separated by ';' (schema scripts), without parameters or results.
  absl::Status ExecScript(std::string_view sql) const;
  // Runs sql and calls fn on each row as it arrives (single-row mode: a large result is never
  // held in memory). Stops early with fn's error, draining the rest.
  absl::Status Stream(std::string_view sql, const Params& params,
                      const std::function<absl::Status(const Result&)>& fn) const;

  const std::string& location() const { return location_; }

 private:
  Connection(PGconn* conn, std::string location) : conn_(conn), location_(std::move(location)) {}
  friend class Transaction;
  absl::Status ErrorOf(const PGresult* r, std::string_view sql) const;
  // PQreset when the connection is lost and no transaction is open.
  void ReconnectIfLost() const;

  PGconn* const conn_;
  const std::string location_;
  mutable bool in_transaction_ = false;
  mutable bool lost_ = false;  // a statement failed in libpq (no SQLSTATE)
};

// BEGIN on construction (through Begin); ROLLBACK on destruction unless Commit succeeded.
class Transaction {
 public:
  static absl::StatusOr<std::unique_ptr<Transaction>> Begin(const Connection& conn);
  ~Transaction();
  absl::Status Commit();

 private:
  explicit Transaction(const Connection& conn) : conn_(conn) {}
  const Connection& conn_;
  bool done_ = false;
};

// The SQLSTATE of a failed statement's status ("40001", ...), or "" when it carries none.
std::string SqlState(const absl::Status& status);

}  // namespace fedface::partner::pg
