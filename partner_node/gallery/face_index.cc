#include "partner_node/gallery/face_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/invlists/DirectMap.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr int kMaxTopK = 10000;

bool IsFinite(const Embedding& e) {
  return std::all_of(e.begin(), e.end(), [](float v) { return std::isfinite(v); });
}

// Holds FAISS's OpenMP to the calling thread while in scope. The setting is per thread (an
// OpenMP ICV), so other threads keep theirs; the caller's own value is restored.
class OneOpenMpThread {
 public:
  OneOpenMpThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneOpenMpThread() { omp_set_num_threads(saved_); }
  OneOpenMpThread(const OneOpenMpThread&) = delete;
  OneOpenMpThread& operator=(const OneOpenMpThread&) = delete;

 private:
  const int saved_;
};

// Vectors and their ids, row-major.
struct Rows {
  std::vector<float> vectors;
  std::vector<idx_t> ids;
  void Add(idx_t id, const float* v) {
    ids.push_back(id);
    vectors.insert(vectors.end(), v, v + kEmbeddingDim);
  }
};

}  // namespace

// Exactly one layout is set: flat (+ flat_ids) or quantizer (+ ivf).
struct FaceIndex::Faiss {
  std::unique_ptr<faiss::IndexFlatL2> flat;
  std::unique_ptr<faiss::IndexIDMap2> flat_ids;  // does not own `flat`
  std::unique_ptr<faiss::IndexFlatL2> quantizer;
  std::unique_ptr<faiss::IndexIVFFlat> ivf;  // does not own `quantizer`
  int64_t trained_on = 0;                    // embeddings the lists were trained on

  faiss::Index& index() const {
    return ivf ? static_cast<faiss::Index&>(*ivf) : static_cast<faiss::Index&>(*flat_ids);
  }

  // The layout for `rows`: flat below options.approximate_from, else an IVF trained on them.
  static std::unique_ptr<Faiss> Make(const Rows& rows, const FaceIndexOptions& options) {
    auto f = std::make_unique<Faiss>();
    const auto n = static_cast<idx_t>(rows.ids.size());
    if (n < options.approximate_from) {
      f->flat = std::make_unique<faiss::IndexFlatL2>(kEmbeddingDim);
      f->flat_ids = std::make_unique<faiss::IndexIDMap2>(f->flat.get());
    } else {
      // ~sqrt(n) lists of ~sqrt(n) embeddings: a query costs ~(1 + nprobe) * sqrt(n) distances.
      const auto nlist = static_cast<size_t>(std::max<double>(1, std::round(std::sqrt(n))));
      f->quantizer = std::make_unique<faiss::IndexFlatL2>(kEmbeddingDim);
      f->ivf = std::make_unique<faiss::IndexIVFFlat>(f->quantizer.get(), kEmbeddingDim, nlist);
      // Enough for well-placed lists, and seconds rather than minutes at 1M: 64 samples per
      // list (FAISS's default 256) and 10 iterations (25).
      f->ivf->cp.niter = 10;
      f->ivf->cp.max_points_per_centroid = 64;
      f->ivf->train(n, rows.vectors.data());
      // O(removed) deletes instead of a scan of every list.
      f->ivf->set_direct_map_type(faiss::DirectMap::Hashtable);
      f->ivf->nprobe = static_cast<size_t>(options.nprobe);
      f->trained_on = n;
    }
    if (n > 0) f->index().add_with_ids(n, rows.vectors.data(), rows.ids.data());
    return f;
  }

  bool NeedsRebuild(int64_t new_total, const FaceIndexOptions& options) const {
    if (!ivf) return new_total >= options.approximate_from;
    return new_total < options.approximate_from / 2 ||
           static_cast<double>(new_total) > options.retrain_growth * trained_on;
  }

  // Every stored vector except those in `skip`.
  Rows Snapshot(const std::unordered_set<idx_t>& skip) const {
    Rows rows;
    rows.ids.reserve(index().ntotal);
    rows.vectors.reserve(index().ntotal * kEmbeddingDim);
    if (flat) {
      const float* xb = flat->get_xb();
      for (size_t i = 0; i < flat_ids->id_map.size(); ++i) {
        if (!skip.count(flat_ids->id_map[i])) rows.Add(flat_ids->id_map[i], xb + i * kEmbeddingDim);
      }
      return rows;
    }
    const faiss::InvertedLists& lists = *ivf->invlists;
    for (size_t l = 0; l < lists.nlist; ++l) {
      faiss::InvertedLists::ScopedIds ids(&lists, l);
      faiss::InvertedLists::ScopedCodes codes(&lists, l);
      const auto* xb = reinterpret_cast<const float*>(codes.get());
      for (size_t i = 0; i < lists.list_size(l); ++i) {
        if (!skip.count(ids[i])) rows.Add(ids[i], xb + i * kEmbeddingDim);
      }
    }
    return rows;
  }
};

namespace {

// Out-of-range options would make FAISS throw (nprobe 0) or rebuild on every change (growth 1).
FaceIndexOptions Sane(FaceIndexOptions o) {
  o.approximate_from = std::max<int64_t>(1, o.approximate_from);
  o.nprobe = std::max(1, o.nprobe);
  o.retrain_growth = std::isfinite(o.retrain_growth) ? std::max(1.5, o.retrain_growth) : 2.0;
  return o;
}

}  // namespace

FaceIndex::FaceIndex(std::string model_version, FaceIndexOptions options)
    : model_version_(std::move(model_version)),
      options_(Sane(options)),
      faiss_(Faiss::Make(Rows{}, options_)) {}

FaceIndex::~FaceIndex() = default;

absl::StatusOr<std::unique_ptr<FaceIndex>> FaceIndex::Build(const GalleryStore& store,
                                                            std::string model_version,
                                                            FaceIndexOptions options) {
  const std::string version = model_version;
  return Build([&store, &version](
                   const EmbeddingVisitor& each) { return store.ForEachEmbedding(version, each); },
               std::move(model_version), options);
}

absl::StatusOr<std::unique_ptr<FaceIndex>> FaceIndex::Build(const EmbeddingSource& source,
                                                            std::string model_version,
                                                            FaceIndexOptions options) {
  auto index = std::make_unique<FaceIndex>(std::move(model_version), options);
  // Straight into the rows FAISS is built from (not a GalleryChange): at 1M embeddings this is
  // the difference between ~0.5 and ~1.1 GB held while the index is made.
  Rows rows;
  std::unordered_map<int64_t, size_t> row_of;  // id -> row (a repeated id: the last one wins)
  RETURN_IF_ERROR(source([&](const StoredEmbedding& e) {
    if (e.model_version != index->model_version_) return absl::OkStatus();
    if (!IsFinite(e.embedding)) {
      return absl::InvalidArgumentError(
          absl::StrCat("face index: embedding ", e.id, " is not finite"));
    }
    auto [it, fresh] = row_of.emplace(e.id, rows.ids.size());
    if (fresh) {
      rows.Add(e.id, e.embedding.data());
    } else {
      std::copy(e.embedding.begin(), e.embedding.end(),
                rows.vectors.begin() + it->second * kEmbeddingDim);
    }
    index->owners_[e.id] = Owner{e.subject_id, e.subject};
    return absl::OkStatus();
  }));
  row_of.clear();
  try {
    index->faiss_ = Faiss::Make(rows, index->options_);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("face index: FAISS build failed: ", e.what()));
  }
  return index;
}

absl::Status FaceIndex::Apply(const GalleryChange& change) {
  std::vector<const StoredEmbedding*> adds;
  for (const StoredEmbedding& e : change.added) {
    if (e.model_version != model_version_) continue;
    if (!IsFinite(e.embedding)) {
      return absl::InvalidArgumentError(
          absl::StrCat("face index: embedding ", e.id, " is not finite"));
    }
    adds.push_back(&e);
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  std::unordered_set<idx_t> to_remove;
  for (int64_t id : change.removed_embedding_ids) {
    if (owners_.count(id)) to_remove.insert(id);
  }
  for (const StoredEmbedding* e : adds) {
    if (owners_.count(e->id)) to_remove.insert(e->id);  // re-added: replace, never duplicate
  }
  Rows added;
  added.vectors.reserve(adds.size() * kEmbeddingDim);
  std::unordered_set<int64_t> seen;
  // The last occurrence of an id within `added` wins.
  for (auto it = adds.rbegin(); it != adds.rend(); ++it) {
    if (seen.insert((*it)->id).second) added.Add((*it)->id, (*it)->embedding.data());
  }
  const int64_t new_total = faiss_->index().ntotal - static_cast<int64_t>(to_remove.size()) +
                            static_cast<int64_t>(added.ids.size());
  try {
    if (faiss_->NeedsRebuild(new_total, options_)) {
      Rows rows = faiss_->Snapshot(to_remove);
      rows.ids.insert(rows.ids.end(), added.ids.begin(), added.ids.end());
      rows.vectors.insert(rows.vectors.end(), added.vectors.begin(), added.vectors.end());
      added = Rows{};
      faiss_ = Faiss::Make(rows, options_);
    } else {
      // An enrolment's few changes: on this thread only, like a search.
      OneOpenMpThread one_thread;
      if (!to_remove.empty()) {
        const std::vector<idx_t> ids(to_remove.begin(), to_remove.end());
        // IDSelectorArray: the one the IVF's hashtable direct map removes by lookup.
        faiss::IDSelectorArray selector(ids.size(), ids.data());
        faiss_->index().remove_ids(selector);
      }
      if (!added.ids.empty()) {
        faiss_->index().add_with_ids(static_cast<idx_t>(added.ids.size()), added.vectors.data(),
                                     added.ids.data());
      }
    }
  } catch (const std::exception& e) {
    // FAISS reports misuse by exception; the index may be partly updated, so say so plainly.
    return absl::InternalError(absl::StrCat("face index: FAISS update failed: ", e.what(),
                                            " (rebuild the index from the store)"));
  }
  for (idx_t id : to_remove) owners_.erase(id);
  seen.clear();
  for (auto it = adds.rbegin(); it != adds.rend(); ++it) {
    if (!seen.insert((*it)->id).second) continue;
    owners_[(*it)->id] = Owner{(*it)->subject_id, (*it)->subject};
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<FaceCandidate>> FaceIndex::Search(const Embedding& probe,
                                                             int top_k) const {
  if (top_k < 1 || top_k > kMaxTopK) {
    return absl::InvalidArgumentError(
        absl::StrCat("face index: top_k ", top_k, " is outside [1, ", kMaxTopK, "]"));
  }
  if (!IsFinite(probe)) return absl::InvalidArgumentError("face index: probe is not finite");
  OneOpenMpThread one_thread;
  std::shared_lock<std::shared_mutex> lock(mu_);
  const faiss::Index& index = faiss_->index();
  const idx_t total = index.ntotal;
  if (total == 0) return std::vector<FaceCandidate>{};

  // A subject may own several embeddings, so widen the search until it yields top_k distinct
  // subjects (or covers everything): more results (k), and for the IVF more lists (nprobe) once
  // the probed lists hold fewer than k. Each subject's first hit is its best of those visited.
  idx_t k = std::min<idx_t>(total, idx_t{top_k} * 4);
  faiss::SearchParametersIVF ivf_params;
  const size_t nlist = faiss_->ivf ? faiss_->ivf->nlist : 1;
  ivf_params.nprobe = std::min(nlist, static_cast<size_t>(options_.nprobe));
  std::vector<float> distances;
  std::vector<idx_t> labels;
  std::vector<FaceCandidate> best;
  while (true) {
    distances.assign(k, 0.f);
    labels.assign(k, -1);
    try {
      index.search(1, probe.data(), k, distances.data(), labels.data(),
                   faiss_->ivf ? &ivf_params : nullptr);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("face index: FAISS search failed: ", e.what()));
    }
    best.clear();
    std::unordered_set<int64_t> subjects;
    idx_t found = 0;
    for (idx_t i = 0; i < k; ++i) {
      if (labels[i] < 0) continue;
      ++found;
      auto owner = owners_.find(labels[i]);
      if (owner == owners_.end()) continue;  // cannot happen: owners_ mirrors the FAISS ids
      if (!subjects.insert(owner->second.subject_id).second) continue;
      best.push_back(FaceCandidate{owner->second.subject_id, owner->second.subject,
                                   std::sqrt(std::max(0.f, distances[i])), labels[i]});
    }
    if (static_cast<int>(best.size()) >= top_k) break;
    if (found < k && ivf_params.nprobe < nlist) {
      ivf_params.nprobe = std::min(nlist, ivf_params.nprobe * 4);
    } else if (found == k && k < total) {
      k = std::min(total, k * 4);
    } else {
      break;  // everything there is has been seen
    }
  }
  std::stable_sort(best.begin(), best.end(), [](const FaceCandidate& a, const FaceCandidate& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.subject_id < b.subject_id;
  });
  if (static_cast<int>(best.size()) > top_k) best.resize(top_k);
  return best;
}

int64_t FaceIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return faiss_->index().ntotal;
}

std::vector<int64_t> FaceIndex::Ids() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<int64_t> ids;
  ids.reserve(owners_.size());
  for (const auto& [id, owner] : owners_) ids.push_back(id);
  return ids;
}

bool FaceIndex::approximate() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return faiss_->ivf != nullptr;
}

}  // namespace fedface::partner
