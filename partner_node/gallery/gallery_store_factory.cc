#include "partner_node/gallery/gallery_store_factory.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/postgresql_gallery_store.h"
#include "partner_node/gallery/sqlite_gallery_store.h"

namespace fedface::partner {

GalleryStoreSpec SqliteGallerySpec(const std::string& path, bool must_exist) {
  GalleryStoreSpec spec;
  spec.kind = GalleryStoreKind::kSqlite;
  spec.sqlite_path = path;
  spec.must_exist = must_exist;
  return spec;
}

absl::Status CheckConninfoHasNoPassword(std::string_view conninfo, std::string_view key) {
  const std::string lower = absl::AsciiStrToLower(std::string(conninfo));
  bool has_password = lower.find("password") != std::string::npos;
  // URI form: postgresql://user:secret@host/db
  if (const size_t scheme = lower.find("://"); scheme != std::string::npos) {
    const size_t authority_end = lower.find_first_of("/?", scheme + 3);
    const std::string authority = lower.substr(scheme + 3, authority_end - (scheme + 3));
    const size_t at = authority.rfind('@');
    if (at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos) {
      has_password = true;
    }
  }
  if (has_password) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(key),
                     ": the connection string carries a password; put it in a passfile "
                     "(passfile=FILE in the string, PGPASSFILE or ~/.pgpass), never in the "
                     "configuration"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<GalleryStore>> OpenGalleryStore(const GalleryStoreSpec& spec) {
  switch (spec.kind) {
    case GalleryStoreKind::kSqlite:
      return SqliteGalleryStore::Open(spec.sqlite_path, spec.must_exist);
    case GalleryStoreKind::kPostgresql:
      RETURN_IF_ERROR(
          CheckConninfoHasNoPassword(spec.postgresql_conninfo, "gallery.postgresql.conninfo"));
      return PostgresqlGalleryStore::Open(
          spec.postgresql_conninfo, spec.must_exist,
          {spec.postgresql_reconnect_within, spec.postgresql_change_log_retention});
  }
  return absl::InvalidArgumentError("gallery.store: unknown store kind");
}

}  // namespace fedface::partner
