// The one place a gallery store is opened: `gallery.store` picks the embedded SQLite store (the
// default, one machine) or the PostgreSQL store (many enrolment hosts share one gallery). Every
// caller - enrolment, the local API, serving, evaluation and the traffic audit - opens its store
// here and uses it only through the GalleryStore interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner {

enum class GalleryStoreKind { kSqlite, kPostgresql };

struct GalleryStoreSpec {
  GalleryStoreKind kind = GalleryStoreKind::kSqlite;
  std::string sqlite_path;          // kSqlite: the database file
  std::string postgresql_conninfo;  // kPostgresql: libpq connection string, never a password
  // A store that does not exist yet is NotFound instead of created (listings, the audit).
  bool must_exist = false;
  // kPostgresql: how long a statement or transaction that lost the server (a restart, a
  // failover) is retried, reconnecting with backoff, before it fails (zero: it fails at once;
  // gallery.postgresql.reconnect_timeout_s, set by `enroll`).
  absl::Duration postgresql_reconnect_within = absl::ZeroDuration();
  // kPostgresql: a follower silent for longer no longer holds change-log rows back from
  // pruning (gallery.postgresql.change_log_retention_s).
  absl::Duration postgresql_change_log_retention = absl::Hours(24);
};

// A spec for the SQLite file at path.
GalleryStoreSpec SqliteGallerySpec(const std::string& path, bool must_exist = false);

// Refuses a libpq connection string that carries a password (key=value or URI form): the password
// comes from a passfile (passfile=..., PGPASSFILE or ~/.pgpass), never from the configuration.
// `key` names where the string came from in the error.
absl::Status CheckConninfoHasNoPassword(std::string_view conninfo, std::string_view key);

// Opens the store the spec names. Errors name the file or the PostgreSQL server.
absl::StatusOr<std::unique_ptr<GalleryStore>> OpenGalleryStore(const GalleryStoreSpec& spec);

}  // namespace fedface::partner
