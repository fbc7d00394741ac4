#include "partner_node/enroll/gallery_writer.h"

#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {

absl::StatusOr<GalleryChange> GalleryWriter::FollowInIndex(absl::StatusOr<GalleryChange> change) {
  if (!change.ok() || index_ == nullptr) return change;
  if (absl::Status s = index_->Apply(*change); !s.ok()) {
    return absl::InternalError(absl::StrCat(
        store_.location(), ": committed, but the search index did not follow: ", s.message()));
  }
  return change;
}

absl::StatusOr<GalleryChange> GalleryWriter::Commit(const std::vector<ImageOutcome>& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  return FollowInIndex(store_.CommitBatch(batch));
}

absl::StatusOr<GalleryChange> GalleryWriter::RemoveFiles(
    const std::vector<std::string>& relative_paths) {
  std::lock_guard<std::mutex> lock(mu_);
  return FollowInIndex(store_.RemoveFiles(relative_paths));
}

absl::StatusOr<GalleryChange> GalleryWriter::DeleteSubject(std::string_view subject) {
  std::lock_guard<std::mutex> lock(mu_);
  return FollowInIndex(store_.DeleteSubject(subject));
}

absl::StatusOr<GalleryFeed> GalleryWriter::CatchUp(int64_t position) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(GalleryFeed feed, store_.ChangesAfter(position));
  RETURN_IF_ERROR(FollowInIndex(feed.change).status());
  return feed;
}

absl::StatusOr<int64_t> GalleryWriter::Reload(std::string_view follower) {
  std::lock_guard<std::mutex> lock(mu_);
  // The position first: what commits while the store is read is applied again later, harmlessly.
  ASSIGN_OR_RETURN(int64_t position, store_.StartFollowing(follower));
  if (index_ == nullptr) return position;
  const std::vector<int64_t> held = index_->Ids();
  std::unordered_set<int64_t> missing(held.begin(), held.end());  // held, not (yet) seen stored
  GalleryChange change;
  RETURN_IF_ERROR(store_.ForEachEmbedding(index_->model_version(), [&](const StoredEmbedding& e) {
    if (missing.erase(e.id) == 0) change.added.push_back(e);
    return absl::OkStatus();
  }));
  change.removed_embedding_ids.assign(missing.begin(), missing.end());
  RETURN_IF_ERROR(FollowInIndex(change).status());
  return position;
}

}  // namespace fedface::partner
