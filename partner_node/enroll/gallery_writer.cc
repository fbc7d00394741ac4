#include "partner_node/enroll/gallery_writer.h"

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

}  // namespace fedface::partner
