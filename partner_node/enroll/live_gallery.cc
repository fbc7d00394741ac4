#include "partner_node/enroll/live_gallery.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>

#include "absl/strings/str_cat.h"
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

namespace {

// The follower's name in gallery_followers: unique per process and gallery.
std::string FollowerName() {
  static std::atomic<int> galleries{0};
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "unknown");
  return absl::StrCat(host, ":", getpid(), ":", ++galleries);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LiveGallery>> LiveGallery::Open(const GalleryStoreSpec& spec,
                                                               const std::string& model_version,
                                                               FaceIndexOptions index_options,
                                                               absl::Duration follow_every) {
  ASSIGN_OR_RETURN(std::unique_ptr<GalleryStore> store, OpenGalleryStore(spec));
  std::unique_ptr<LiveGallery> live(new LiveGallery());
  // The position before the index is built: what is committed in between is applied again,
  // which changes nothing (GalleryStore::ChangeLogPosition). Registered at once, so no prune
  // takes what the build does not read.
  if (follow_every > absl::ZeroDuration()) {
    const std::string name = FollowerName();
    absl::StatusOr<int64_t> position = store->StartFollowing(name);
    if (!position.ok() && !absl::IsUnimplemented(position.status())) return position.status();
    if (position.ok()) {
      live->follower_name_ = name;
      live->position_ = *position;
      live->recorded_ = absl::Now();
    }
  }
  live->heartbeat_ =
      std::max(follow_every, std::min(spec.postgresql_change_log_retention / 4, absl::Minutes(1)));
  ASSIGN_OR_RETURN(std::unique_ptr<FaceIndex> index,
                   FaceIndex::Build(*store, model_version, index_options));
  live->store_ = std::move(store);
  live->index_ = std::move(index);
  live->writer_ = std::make_unique<GalleryWriter>(*live->store_, live->index_.get());
  if (!live->follower_name_.empty()) {
    live->follower_ =
        std::thread([gallery = live.get(), follow_every] { gallery->Follow(follow_every); });
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
  // A clean exit holds no change-log rows back (a killed process is dropped after the retention).
  if (!follower_name_.empty()) (void)store_->ForgetFollower(follower_name_);
}

absl::Status LiveGallery::CatchUpNow() {
  if (follower_name_.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(step_mu_);
  return FollowStep();
}

absl::Status LiveGallery::FollowStep() {
  // Until the log is read to its end (a far-behind follower reads it in pages).
  for (int64_t before = -1; before != position_;) {
    before = position_;
    absl::StatusOr<GalleryFeed> feed = writer_->CatchUp(position_);
    if (absl::IsOutOfRange(feed.status())) {
      std::cerr << "gallery: " << feed.status().message()
                << ": reloading the search index from the store" << std::endl;
      const absl::Time start = absl::Now();
      ASSIGN_OR_RETURN(position_, writer_->Reload(follower_name_));
      recorded_ = absl::Now();
      std::cerr << "gallery: reloaded the search index from the store: " << index_->size()
                << " embeddings in " << absl::FormatDuration(recorded_ - start) << std::endl;
      before = -1;
      continue;
    }
    if (!feed.ok()) return feed.status();
    position_ = feed->position;
  }
  if (absl::Now() - recorded_ >= heartbeat_) {
    RETURN_IF_ERROR(store_->RecordFollower(follower_name_, position_));
    recorded_ = absl::Now();
    // Any follower may prune: a gallery served but no longer enrolled still sheds its log.
    RETURN_IF_ERROR(store_->PruneChanges().status());
  }
  return absl::OkStatus();
}

void LiveGallery::Follow(absl::Duration every) {
  std::string last_error;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(every), [&] { return stop_; })) {
    lock.unlock();
    absl::Status step;
    {
      std::lock_guard<std::mutex> step_lock(step_mu_);
      step = FollowStep();
    }
    if (!step.ok()) {
      if (std::string error(step.message()); error != last_error) {
        std::cerr << "gallery: cannot follow the shared store (retrying every "
                  << absl::FormatDuration(every) << "): " << error << std::endl;
        last_error = error;
      }
    } else if (!last_error.empty()) {
      std::cerr << "gallery: following the shared store again" << std::endl;
      last_error.clear();
    }
    lock.lock();
  }
}

}  // namespace fedface::partner
