#include "partner_node/gallery/gallery_store.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

bool IsHexDigest(std::string_view s) {
  if (s.size() != 64) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool IsFinite(const Embedding& e) {
  return std::all_of(e.begin(), e.end(), [](float v) { return std::isfinite(v); });
}

absl::Status CheckOutcome(const ImageOutcome& o, size_t index, const std::string& location) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(location, ": batch item ", index, ": ", std::string(why)));
  };
  if (o.subject.empty() || o.subject.find('\0') != std::string::npos) return bad("bad subject");
  if (!IsHexDigest(o.content_sha256)) return bad("content_sha256 is not 64 lower-case hex");
  if (o.relative_path &&
      (o.relative_path->empty() || o.relative_path->find('\0') != std::string::npos)) {
    return bad("bad relative path");
  }
  if (o.model_version.empty()) return bad("model version is empty");
  if (o.failure_reason) {
    if (!o.faces.empty()) return bad("a failed image carries embeddings");
  } else {
    if (o.faces.empty()) return bad("an enrolled image has no embedding");
    if (!std::all_of(o.faces.begin(), o.faces.end(), IsFinite)) {
      return bad("an embedding is not finite");
    }
  }
  return absl::OkStatus();
}

absl::Status NoChangeLog(const std::string& location) {
  return absl::UnimplementedError(absl::StrCat(location, ": no change log (one writer)"));
}

}  // namespace

absl::Status GalleryStore::CheckBatch(const std::vector<ImageOutcome>& batch) const {
  for (size_t i = 0; i < batch.size(); ++i) {
    RETURN_IF_ERROR(CheckOutcome(batch[i], i, location_));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> GalleryStore::ChangeLogPosition() const { return NoChangeLog(location()); }

absl::StatusOr<GalleryFeed> GalleryStore::ChangesAfter(int64_t) const {
  return NoChangeLog(location());
}

absl::StatusOr<int64_t> GalleryStore::StartFollowing(std::string_view) {
  return NoChangeLog(location());
}

absl::Status GalleryStore::RecordFollower(std::string_view, int64_t) {
  return NoChangeLog(location());
}

absl::Status GalleryStore::ForgetFollower(std::string_view) { return NoChangeLog(location()); }

absl::StatusOr<ChangeLogPrune> GalleryStore::PruneChanges() { return NoChangeLog(location()); }

absl::StatusOr<std::vector<StoredEmbedding>> GalleryStore::Embeddings(
    std::string_view model_version) const {
  std::vector<StoredEmbedding> out;
  RETURN_IF_ERROR(ForEachEmbedding(model_version, [&out](const StoredEmbedding& e) {
    out.push_back(e);
    return absl::OkStatus();
  }));
  return out;
}

StoredEmbedding AddedEmbedding(int64_t id, int64_t image_id, int64_t subject_id,
                               const ImageOutcome& o, size_t face) {
  StoredEmbedding e;
  e.id = id;
  e.image_id = image_id;
  e.subject_id = subject_id;
  e.subject = o.subject;
  e.face_index = static_cast<int>(face);
  e.model_version = o.model_version;
  e.embedding = o.faces[face];
  return e;
}

void DropAddedAndRemoved(GalleryChange& change) {
  std::unordered_set<int64_t> removed(change.removed_embedding_ids.begin(),
                                      change.removed_embedding_ids.end());
  std::unordered_set<int64_t> added_and_removed;
  std::erase_if(change.added, [&](const StoredEmbedding& e) {
    if (!removed.count(e.id)) return false;
    added_and_removed.insert(e.id);
    return true;
  });
  std::erase_if(change.removed_embedding_ids,
                [&](int64_t id) { return added_and_removed.count(id) > 0; });
}

}  // namespace fedface::partner
