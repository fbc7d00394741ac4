#include "partner_node/enroll/live_gallery.h"

#include "core/common/status_macros.h"

namespace fedface::partner {

FaceIndexOptions FaceIndexOptionsFromConfig(const Config& config) {
  FaceIndexOptions options;
  options.approximate_from = config.GetInt("gallery.exact_search_below");
  options.nprobe = static_cast<int>(config.GetInt("gallery.search_nprobe"));
  return options;
}

absl::StatusOr<std::unique_ptr<LiveGallery>> LiveGallery::Open(const GalleryStoreSpec& spec,
                                                               const std::string& model_version,
                                                               FaceIndexOptions index_options) {
  ASSIGN_OR_RETURN(std::unique_ptr<GalleryStore> store, OpenGalleryStore(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<FaceIndex> index,
                   FaceIndex::Build(*store, model_version, index_options));
  std::unique_ptr<LiveGallery> live(new LiveGallery());
  live->store_ = std::move(store);
  live->index_ = std::move(index);
  live->writer_ = std::make_unique<GalleryWriter>(*live->store_, live->index_.get());
  return live;
}

}  // namespace fedface::partner
