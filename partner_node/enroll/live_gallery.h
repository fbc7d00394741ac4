// A process's gallery while it serves: the store, a FaceIndex built from it for one model
// version, and the GalleryWriter that keeps the two in step. Owned together so they are opened,
// used and destroyed together (`partner_node local-api` and `partner_node serve`).
//
// On a store other hosts write (PostgreSQL), a thread follows the store's change log every
// `follow_every` and applies to the index what they enrolled or removed, so a serving process
// searches the shared gallery as it grows, without a restart (polling by change sequence: one
// indexed query per interval when nothing changed). A read error is logged to stderr once and
// retried at the next interval; the index keeps serving what it holds.
//
// The follower registers with the store under a name of its own and records the position it
// applied about every quarter of the change-log retention (at most a minute apart), pruning the
// log as it does; it unregisters when destroyed. One that finds the changes it needs pruned (it
// was silent longer than the retention) rebuilds its index from the store and says so on stderr.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config/config_file.h"
#include "partner_node/enroll/gallery_writer.h"
#include "partner_node/gallery/face_index.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"

namespace fedface::partner {

// gallery.exact_search_below and gallery.search_nprobe.
FaceIndexOptions FaceIndexOptionsFromConfig(const Config& config);
// gallery.postgresql.follow_interval_ms.
absl::Duration FollowIntervalFromConfig(const Config& config);

class LiveGallery {
 public:
  // Opens (or creates) the store `spec` names and loads every embedding of model_version into a
  // new index; follows the store's change log every `follow_every` when it has one (zero: never).
  // Errors name the store.
  static absl::StatusOr<std::unique_ptr<LiveGallery>> Open(
      const GalleryStoreSpec& spec, const std::string& model_version,
      FaceIndexOptions index_options = {}, absl::Duration follow_every = absl::ZeroDuration());
  ~LiveGallery();
  LiveGallery(const LiveGallery&) = delete;
  LiveGallery& operator=(const LiveGallery&) = delete;

  // Thread-safe (see the classes); every write must go through writer().
  GalleryStore& store() { return *store_; }
  FaceIndex& index() { return *index_; }
  GalleryWriter& writer() { return *writer_; }

  // One follow step now (read the change log to its end, reload when it was pruned, record the
  // position when due): what the thread does every follow_every. OK without a change log.
  absl::Status CatchUpNow();
  // The name this process follows the store under (gallery_followers), "" when not following.
  const std::string& follower() const { return follower_name_; }

 private:
  LiveGallery() = default;
  void Follow(absl::Duration every);
  absl::Status FollowStep();  // REQUIRES: step_mu_ held

  std::string follower_name_;
  absl::Duration heartbeat_;
  std::mutex step_mu_;  // the thread's steps and CatchUpNow, one at a time
  int64_t position_ = 0;
  absl::Time recorded_;  // when the store last had position_

  std::unique_ptr<GalleryStore> store_;
  std::unique_ptr<FaceIndex> index_;
  std::unique_ptr<GalleryWriter> writer_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread follower_;
};

}  // namespace fedface::partner
