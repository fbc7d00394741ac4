// 1:N search over a gallery's embeddings with FAISS. It holds the embeddings of ONE model version
// (embeddings of different models are not comparable) and follows the store: built from it on
// open, then Apply()'d every GalleryChange the store returns (add on enrol, remove on delete or
// replacement). FAISS ids are the store's embedding row ids.
//
// Two layouts, chosen by size (FaceIndexOptions):
//   - below `approximate_from` embeddings, an exact scan (IndexFlatL2 in an IndexIDMap2);
//   - from there, an inverted file (IndexIVFFlat, ~sqrt(n) k-means lists, `nprobe` of them
//     scanned per query). IVFFlat keeps the float embeddings themselves in its lists, so the
//     candidates it visits are ranked by their exact distances: only which embeddings get
//     visited is approximate (recall@1 >= 0.99 of brute force, bench/identify_bench.cc).
// Why IVF and not HNSW: FAISS's HNSW cannot remove a vector, so deletes and re-enrolments would
// need a tombstone set, over-fetching past the tombstones and periodic full rebuilds, and its
// graph adds ~256 MB at 1M (M 32) beside the vectors; its build cost was not measured here.
// IVF removes in O(removed) with a hashtable direct map, adds incrementally (each vector to its
// nearest list) and, measured at 1M on this 2-core EPYC: trains and fills in ~15 s of CPU, holds
// ~815 MiB, and answers in ~3-4 ms of one core (bench/identify_bench.cc). It is retrained when
// the gallery has grown `retrain_growth` times since the last training (lists grow, queries slow
// down), and goes back to the flat scan below half of `approximate_from`.
#pragma once

#include <cstdint>
#include <functional>
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

struct FaceIndexOptions {
  // From this many embeddings on, the inverted file (gallery.exact_search_below). A flat scan is
  // exact and costs n x 128 multiply-adds per query: ~0.85 ms at 10k on one core of the 2-core
  // EPYC here (Debian's FAISS is built without AVX2), ~1.4 ms at 16k; the IVF scans ~25 sqrt(n).
  int64_t approximate_from = 16384;
  // Lists scanned per query (of ~sqrt(n)): recall@1 >= 0.99 at 1M (bench/identify_bench.cc;
  // gallery.search_nprobe).
  int nprobe = 28;
  // Retrain the lists once the gallery holds this many times the embeddings it was trained on.
  // (Values out of range are brought in: approximate_from and nprobe >= 1, growth >= 1.5.)
  double retrain_growth = 2.0;
};

// Every embedding of one source, for Build: calls `each` for each embedding, stops on its error.
using EmbeddingVisitor = std::function<absl::Status(const StoredEmbedding&)>;
using EmbeddingSource = std::function<absl::Status(const EmbeddingVisitor& each)>;

class FaceIndex {
 public:
  // An empty index for embeddings of model_version.
  explicit FaceIndex(std::string model_version, FaceIndexOptions options = {});
  ~FaceIndex();
  FaceIndex(const FaceIndex&) = delete;
  FaceIndex& operator=(const FaceIndex&) = delete;

  // Loads every embedding of model_version from the store. Fails when the store cannot be read.
  static absl::StatusOr<std::unique_ptr<FaceIndex>> Build(const GalleryStore& store,
                                                          std::string model_version,
                                                          FaceIndexOptions options = {});
  // The same from any store (embeddings of other model versions are skipped).
  static absl::StatusOr<std::unique_ptr<FaceIndex>> Build(const EmbeddingSource& source,
                                                          std::string model_version,
                                                          FaceIndexOptions options = {});

  // Follows a store change: removes removed_embedding_ids, then adds the `added` embeddings whose
  // model_version is this index's (others are ignored). Adding an id already present replaces it.
  // Changes from several enrolment hosts may be applied in any order as long as each id's last
  // change comes last. REQUIRES: embeddings finite, else InvalidArgument and the index is
  // unchanged. Thread-safe (exclusive with Search); a change that crosses a layout or retraining
  // point rebuilds the index (seconds at 1M, with all cores) while searches wait.
  absl::Status Apply(const GalleryChange& change);

  // The top_k subjects nearest to `probe`, best first (equal distances by subject id), each with
  // its best distance; fewer when the index holds fewer subjects. Exact (equal to a brute-force
  // scan) below approximate_from; above, the subjects found carry exact distances, and the
  // nearest is brute force's nearest with probability >= 0.99 (measured).
  // REQUIRES: 1 <= top_k <= 10000 and a finite probe, else InvalidArgument.
  // Thread-safe: concurrent Searches run in parallel, each on its calling thread only (FAISS's
  // OpenMP is held to one thread: the local API admits one core per request).
  absl::StatusOr<std::vector<FaceCandidate>> Search(const Embedding& probe, int top_k) const;

  int64_t size() const;              // embeddings held
  std::vector<int64_t> Ids() const;  // their store ids, in no order
  bool approximate() const;          // true when the inverted file is in use
  const std::string& model_version() const { return model_version_; }
  const FaceIndexOptions& options() const { return options_; }

 private:
  struct Owner {
    int64_t subject_id;
    std::string subject;
  };
  struct Faiss;  // the FAISS objects, kept out of this header

  const std::string model_version_;
  const FaceIndexOptions options_;
  std::unique_ptr<Faiss> faiss_;
  std::unordered_map<int64_t, Owner> owners_;  // embedding id -> subject
  mutable std::shared_mutex mu_;
};

}  // namespace fedface::partner
