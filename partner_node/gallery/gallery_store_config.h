// The gallery store a partner configuration names (gallery.store, gallery.db,
// gallery.postgresql.conninfo; declared in partner_node/enroll/gallery_config_keys.h).
#pragma once

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "partner_node/gallery/gallery_store_factory.h"

namespace fedface::partner {

// InvalidArgument naming the key for an unknown gallery.store, a postgresql store without a
// connection string, or a connection string with a password.
absl::StatusOr<GalleryStoreSpec> GalleryStoreSpecFrom(const Config& config,
                                                      bool must_exist = false);

}  // namespace fedface::partner
