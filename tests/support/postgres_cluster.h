// A throw-away PostgreSQL cluster for tests that need the real server (never a mock): initdb in a
// fresh folder under /tmp, a unix socket in that folder and NO TCP listener
// (listen_addresses = ''), trust authentication for the one superuser "fedface" over that socket
// only. Stopped (pg_ctl -m immediate) and its folder removed when the object is destroyed, which
// gtest does on a failing test too - and, by a watchdog shell that waits on a pipe from the test
// process, when the test process dies (a crash, kill -9), so no server outlives its test.
//
// PostgreSQL refuses to run as root. When the test runs as root (CI), initdb, pg_ctl and the
// server run as the `postgres` system user (created by Debian's postgresql package) through
// `setpriv --reuid/--regid/--init-groups`, and the folder is chowned to it; otherwise they run as
// the test's own user.
//
// Thread safety: one thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface::testing {

class PostgresCluster {
 public:
  // The folder of initdb/pg_ctl (Debian: /usr/lib/postgresql/<major>/bin, or pg_config --bindir),
  // "" when the server is not installed (tests then FEDFACE_SKIP_OR_FAIL).
  static std::string BinDir();

  // One cluster for the whole test process, started on first use (later calls return the same
  // one, or the same error) and stopped at exit. For fixtures that want a fresh database per
  // test: CreateDatabase on it.
  static absl::StatusOr<PostgresCluster*> Shared();

  // initdb + start; the error says which step failed with its output.
  static absl::StatusOr<std::unique_ptr<PostgresCluster>> Start();
  ~PostgresCluster();
  PostgresCluster(const PostgresCluster&) = delete;
  PostgresCluster& operator=(const PostgresCluster&) = delete;

  // CREATE DATABASE name (owned by the superuser "fedface").
  absl::Status CreateDatabase(const std::string& name) const;
  // Runs SQL in database `dbname` as `user` through psql (ON_ERROR_STOP); returns its stdout.
  absl::StatusOr<std::string> Psql(const std::string& dbname, const std::string& sql,
                                   const std::string& user = "fedface") const;

  // The libpq connection string for database dbname as user (unix socket, no password).
  std::string Conninfo(const std::string& dbname, const std::string& user = "fedface") const;

  const std::string& dir() const { return dir_; }
  const std::string& socket_dir() const { return dir_; }

  // Restarts the server (pg_ctl -m immediate restart: every connection is cut, the data stays).
  absl::Status Restart() const;

  // Stops the server (pg_ctl -m immediate: every connection cut, like a crash) and starts it
  // again on the same data: an outage of a length the test decides. The cluster is still the
  // test's (removed on destruction or by the watchdog).
  absl::Status StopServer() const;
  absl::Status StartServer() const;

  // Stops the server (pg_ctl -m immediate); Start()ed clusters stop on destruction anyway.
  void Stop();

 private:
  explicit PostgresCluster(std::string dir) : dir_(std::move(dir)) {}
  void StartWatchdog();

  const std::string dir_;
  bool running_ = false;
  int watchdog_pipe_ = -1;  // write end; closing it makes the watchdog stop and remove
  pid_t watchdog_pid_ = -1;
};

}  // namespace fedface::testing
