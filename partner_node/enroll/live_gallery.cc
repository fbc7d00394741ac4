#include "partner_node/enroll/live_gallery.h"

#include <iostream>

#include "core/common/status_macros.h"

namespace fedface::partner {

FaceIndexOptions FaceIndexOptionsFromConfig(const Config& config) {
  FaceIndexOptions options;
  options.approximate_from = config.GetInt("gallery.exact_search_below");
  options.nprobe = static_cast<int>(config.GetInt("gallery.search_nprobe"));
  return options;
}

absl::Duration FollowIntervalFromConfig(const Config& config) {
  return absl::Milliseconds(config.GetInt("gallery.postgresql.follow_interval_ms"));
}

absl::StatusOr<std::unique_ptr<LiveGallery>> LiveGallery::Open(const GalleryStoreSpec& spec,
                                                               const std::string& model_version,
                                                               FaceIndexOptions index_options,
                                                               absl::Duration follow_every) {
  ASSIGN_OR_RETURN(std::unique_ptr<GalleryStore> store, OpenGalleryStore(spec));
  // The position before the index is built: what is committed in between is applied again,
  // which changes nothing (GalleryStore::ChangeLogPosition).
  absl::StatusOr<int64_t> position = store->ChangeLogPosition();
  const bool follows = position.ok() && follow_every > absl::ZeroDuration();
  if (!position.ok() && !absl::IsUnimplemented(position.status())) return position.status();
  ASSIGN_OR_RETURN(std::unique_ptr<FaceIndex> index,
                   FaceIndex::Build(*store, model_version, index_options));
  std::unique_ptr<LiveGallery> live(new LiveGallery());
  live->store_ = std::move(store);
  live->index_ = std::move(index);
  live->writer_ = std::make_unique<GalleryWriter>(*live->store_, live->index_.get());
  if (follows) {
    live->follower_ = std::thread([gallery = live.get(), at = *position, follow_every] {
      gallery->Follow(at, follow_every);
    });
  }
  return live;
}

LiveGallery::~LiveGallery() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
}

void LiveGallery::Follow(int64_t position, absl::Duration every) {
  std::string last_error;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(every), [&] { return stop_; })) {
    lock.unlock();
    // Until the log is read to its end (a far-behind follower reads it in pages).
    for (int64_t before = -1; before != position;) {
      before = position;
      absl::StatusOr<GalleryFeed> feed = writer_->CatchUp(position);
      if (!feed.ok()) {
        if (std::string error(feed.status().message()); error != last_error) {
          std::cerr << "gallery: cannot follow the shared store (retrying every "
                    << absl::FormatDuration(every) << "): " << error << std::endl;
          last_error = error;
        }
        break;
      }
      if (!last_error.empty()) {
        std::cerr << "gallery: following the shared store again" << std::endl;
        last_error.clear();
      }
      position = feed->position;
    }
    lock.lock();
  }
}

}  // namespace fedface::partner
