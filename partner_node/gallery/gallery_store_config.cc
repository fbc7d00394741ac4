#include "partner_node/gallery/gallery_store_config.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {

absl::StatusOr<GalleryStoreSpec> GalleryStoreSpecFrom(const Config& config, bool must_exist) {
  const std::string kind = config.GetString("gallery.store");
  if (kind.empty() || kind == "sqlite") {
    return SqliteGallerySpec(config.GetPath("gallery.db"), must_exist);
  }
  if (kind != "postgresql") {
    return absl::InvalidArgumentError(
        absl::StrCat("gallery.store: expected sqlite or postgresql, got '", kind, "'"));
  }
  GalleryStoreSpec spec;
  spec.kind = GalleryStoreKind::kPostgresql;
  spec.postgresql_conninfo = config.GetString("gallery.postgresql.conninfo");
  spec.must_exist = must_exist;
  spec.postgresql_change_log_retention =
      absl::Seconds(config.GetInt("gallery.postgresql.change_log_retention_s"));
  if (spec.postgresql_conninfo.empty()) {
    return absl::InvalidArgumentError(
        "gallery.postgresql.conninfo: required when gallery.store is postgresql (a libpq "
        "connection string such as 'host=/run/postgresql dbname=fedface user=fedface')");
  }
  RETURN_IF_ERROR(
      CheckConninfoHasNoPassword(spec.postgresql_conninfo, "gallery.postgresql.conninfo"));
  return spec;
}

}  // namespace fedface::partner
