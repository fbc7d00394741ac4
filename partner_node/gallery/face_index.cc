#include "partner_node/gallery/face_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedface::partner {
namespace {

constexpr int kMaxTopK = 10000;

bool IsFinite(const Embedding& e) {
  return std::all_of(e.begin(), e.end(), [](float v) { return std::isfinite(v); });
}

}  // namespace

struct FaceIndex::Faiss {
  faiss::IndexFlatL2 flat{kEmbeddingDim};
  faiss::IndexIDMap2 ids{&flat};  // does not own `flat` (own_fields false)
};

FaceIndex::FaceIndex(std::string model_version)
    : model_version_(std::move(model_version)), faiss_(std::make_unique<Faiss>()) {}

FaceIndex::~FaceIndex() = default;

absl::StatusOr<std::unique_ptr<FaceIndex>> FaceIndex::Build(const GalleryStore& store,
                                                            std::string model_version) {
  auto index = std::make_unique<FaceIndex>(std::move(model_version));
  GalleryChange all;
  absl::Status s = store.ForEachEmbedding(index->model_version_, [&all](const StoredEmbedding& e) {
    all.added.push_back(e);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (absl::Status applied = index->Apply(all); !applied.ok()) return applied;
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
  std::vector<faiss::Index::idx_t> to_remove;
  for (int64_t id : change.removed_embedding_ids) {
    if (owners_.count(id)) to_remove.push_back(id);
  }
  for (const StoredEmbedding* e : adds) {
    if (owners_.count(e->id)) to_remove.push_back(e->id);  // re-added: replace, never duplicate
  }
  std::vector<float> vectors;
  std::vector<faiss::Index::idx_t> ids;
  vectors.reserve(adds.size() * kEmbeddingDim);
  std::unordered_set<int64_t> seen;
  // The last occurrence of an id within `added` wins.
  for (auto it = adds.rbegin(); it != adds.rend(); ++it) {
    if (!seen.insert((*it)->id).second) continue;
    vectors.insert(vectors.end(), (*it)->embedding.begin(), (*it)->embedding.end());
    ids.push_back((*it)->id);
  }
  try {
    if (!to_remove.empty()) {
      faiss::IDSelectorBatch selector(to_remove.size(), to_remove.data());
      faiss_->ids.remove_ids(selector);
    }
    if (!ids.empty()) {
      faiss_->ids.add_with_ids(static_cast<faiss::Index::idx_t>(ids.size()), vectors.data(),
                               ids.data());
    }
  } catch (const std::exception& e) {
    // FAISS reports misuse by exception; the index may be partly updated, so say so plainly.
    return absl::InternalError(absl::StrCat("face index: FAISS update failed: ", e.what(),
                                            " (rebuild the index from the store)"));
  }
  for (faiss::Index::idx_t id : to_remove) owners_.erase(id);
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
  std::shared_lock<std::shared_mutex> lock(mu_);
  const faiss::Index::idx_t total = faiss_->ids.ntotal;
  if (total == 0) return std::vector<FaceCandidate>{};

  // A subject may own several embeddings, so widen the search until it yields top_k distinct
  // subjects (or covers everything). Each subject's first hit is its best, so the result is exact.
  faiss::Index::idx_t k = std::min<faiss::Index::idx_t>(total, faiss::Index::idx_t{top_k} * 4);
  std::vector<float> distances;
  std::vector<faiss::Index::idx_t> labels;
  std::vector<FaceCandidate> best;
  while (true) {
    distances.assign(k, 0.f);
    labels.assign(k, -1);
    try {
      faiss_->ids.search(1, probe.data(), k, distances.data(), labels.data());
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("face index: FAISS search failed: ", e.what()));
    }
    best.clear();
    std::unordered_set<int64_t> subjects;
    for (faiss::Index::idx_t i = 0; i < k; ++i) {
      if (labels[i] < 0) continue;
      auto owner = owners_.find(labels[i]);
      if (owner == owners_.end()) continue;  // cannot happen: owners_ mirrors the FAISS ids
      if (!subjects.insert(owner->second.subject_id).second) continue;
      best.push_back(FaceCandidate{owner->second.subject_id, owner->second.subject,
                                   std::sqrt(std::max(0.f, distances[i])), labels[i]});
    }
    if (static_cast<int>(best.size()) >= top_k || k == total) break;
    k = std::min(total, k * 4);
  }
  std::stable_sort(best.begin(), best.end(), [](const FaceCandidate& a, const FaceCandidate& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.subject_id < b.subject_id;
  });
  if (static_cast<int>(best.size()) > top_k) best.resize(top_k);
  return best;
}

int64_t FaceIndex::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return faiss_->ids.ntotal;
}

}  // namespace fedface::partner
