// A process's gallery while it serves: the store, a FaceIndex built from it for one model
// version, and the GalleryWriter that keeps the two in step. Owned together so they are opened,
// used and destroyed together (`partner_node local-api` and `partner_node serve`).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "partner_node/enroll/gallery_writer.h"
#include "partner_node/gallery/face_index.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"

namespace fedface::partner {

// gallery.exact_search_below and gallery.search_nprobe.
FaceIndexOptions FaceIndexOptionsFromConfig(const Config& config);

class LiveGallery {
 public:
  // Opens (or creates) the store `spec` names and loads every embedding of model_version into a
  // new index. Errors name the store.
  static absl::StatusOr<std::unique_ptr<LiveGallery>> Open(const GalleryStoreSpec& spec,
                                                           const std::string& model_version,
                                                           FaceIndexOptions index_options = {});
  LiveGallery(const LiveGallery&) = delete;
  LiveGallery& operator=(const LiveGallery&) = delete;

  // Thread-safe (see the classes); every write must go through writer().
  GalleryStore& store() { return *store_; }
  FaceIndex& index() { return *index_; }
  GalleryWriter& writer() { return *writer_; }

 private:
  LiveGallery() = default;
  std::unique_ptr<GalleryStore> store_;
  std::unique_ptr<FaceIndex> index_;
  std::unique_ptr<GalleryWriter> writer_;
};

}  // namespace fedface::partner
