// The one way a process changes its gallery: every write goes to the store and, in the same
// critical section, to the process's live FaceIndex, so the index always equals what the store
// holds for the index's model version. Without it, an enrolment and a deletion racing in two
// threads could apply their index changes in the opposite order of their commits.
//
// Thread safety: all methods are thread-safe; writes are serialised (reads go to the store and
// the index directly, which are thread-safe themselves).
#pragma once

#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/gallery/face_index.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner {

class GalleryWriter {
 public:
  // `store` must outlive the writer; `index` may be null (a process that does not search, such as
  // `partner_node enroll`) and must otherwise outlive it too.
  GalleryWriter(GalleryStore& store, FaceIndex* index) : store_(store), index_(index) {}
  GalleryWriter(const GalleryWriter&) = delete;
  GalleryWriter& operator=(const GalleryWriter&) = delete;

  // GalleryStore::CommitBatch, then FaceIndex::Apply of what it changed. On a store error nothing
  // changed; an index error after a durable commit is returned as Internal (the store is right;
  // rebuilding the index from it repairs the process).
  absl::StatusOr<GalleryChange> Commit(const std::vector<ImageOutcome>& batch);

  // GalleryStore::RemoveFiles, then the index.
  absl::StatusOr<GalleryChange> RemoveFiles(const std::vector<std::string>& relative_paths);

  // GalleryStore::DeleteSubject (NotFound for an unknown subject), then the index.
  absl::StatusOr<GalleryChange> DeleteSubject(std::string_view subject);

  // Applies to the index what any writer of a shared store committed after `position`
  // (GalleryStore::ChangesAfter) and returns it; under the write lock, so a read of the store
  // never overtakes a write of this process. Unimplemented for a single-writer store.
  absl::StatusOr<GalleryFeed> CatchUp(int64_t position);

  // Brings the index to what the store holds now, for a follower that can no longer catch up
  // from the change log (it was pruned): registers `follower` at the log's current position
  // (GalleryStore::StartFollowing), then adds the stored embeddings the index lacks and removes
  // those the store no longer has (ids are never reused, a stored embedding never changes).
  // Returns the position to follow from. Searches wait while the index changes.
  absl::StatusOr<int64_t> Reload(std::string_view follower);

  GalleryStore& store() { return store_; }
  const GalleryStore& store() const { return store_; }
  FaceIndex* index() const { return index_; }

 private:
  absl::StatusOr<GalleryChange> FollowInIndex(absl::StatusOr<GalleryChange> change);

  GalleryStore& store_;
  FaceIndex* const index_;
  std::mutex mu_;  // store write + index update, as one step
};

}  // namespace fedface::partner
