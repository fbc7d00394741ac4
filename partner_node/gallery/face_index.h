// 1:N search over a gallery's embeddings with FAISS: an exact L2 index (IndexFlatL2 inside an
// IndexIDMap2, so FAISS ids are the store's embedding row ids). It holds the embeddings of ONE
// model version (embeddings of different models are not comparable) and follows the store:
// built from it on open, then Apply()'d every GalleryChange the store returns (add on enrol,
// remove on delete or replacement).
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/engine/embedding.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner {

// A subject close to the probe: its best (smallest) distance over all its embeddings.
struct FaceCandidate {
  int64_t subject_id = 0;
  std::string subject;
  float distance = 0.f;      // Euclidean (sqrt of FAISS's squared L2, negatives clamped to 0)
  int64_t embedding_id = 0;  // the subject's embedding that gave `distance`
};

class FaceIndex {
 public:
  // An empty index for embeddings of model_version.
  explicit FaceIndex(std::string model_version);
  ~FaceIndex();
  FaceIndex(const FaceIndex&) = delete;
  FaceIndex& operator=(const FaceIndex&) = delete;

  // Loads every embedding of model_version from the store. Fails when the store cannot be read.
  static absl::StatusOr<std::unique_ptr<FaceIndex>> Build(const GalleryStore& store,
                                                          std::string model_version);

  // Follows a store change: removes removed_embedding_ids, then adds the `added` embeddings whose
  // model_version is this index's (others are ignored). Adding an id already present replaces it.
  // REQUIRES: embeddings finite, else InvalidArgument and the index is unchanged. Thread-safe
  // (exclusive with Search).
  absl::Status Apply(const GalleryChange& change);

  // The top_k subjects nearest to `probe`, best first (equal distances by subject id), each with
  // its best distance; fewer when the index holds fewer subjects. Exact: equals a brute-force scan.
  // REQUIRES: 1 <= top_k <= 10000 and a finite probe, else InvalidArgument.
  // Thread-safe: concurrent Searches run in parallel.
  absl::StatusOr<std::vector<FaceCandidate>> Search(const Embedding& probe, int top_k) const;

  int64_t size() const;  // embeddings held
  const std::string& model_version() const { return model_version_; }

 private:
  struct Owner {
    int64_t subject_id;
    std::string subject;
  };
  struct Faiss;  // the FAISS objects, kept out of this header

  const std::string model_version_;
  std::unique_ptr<Faiss> faiss_;
  std::unordered_map<int64_t, Owner> owners_;  // embedding id -> subject
  mutable std::shared_mutex mu_;
};

}  // namespace fedface::partner
