#include "partner_node/enroll/live_gallery.h"

namespace fedface::partner {

absl::StatusOr<std::unique_ptr<LiveGallery>> LiveGallery::Open(const GalleryStoreSpec& spec,
                                                               const std::string& model_version) {
  absl::StatusOr<std::unique_ptr<GalleryStore>> store = OpenGalleryStore(spec);
  if (!store.ok()) return store.status();
  absl::StatusOr<std::unique_ptr<FaceIndex>> index = FaceIndex::Build(**store, model_version);
  if (!index.ok()) return index.status();
  std::unique_ptr<LiveGallery> live(new LiveGallery());
  live->store_ = std::move(*store);
  live->index_ = std::move(*index);
  live->writer_ = std::make_unique<GalleryWriter>(*live->store_, live->index_.get());
  return live;
}

}  // namespace fedface::partner
