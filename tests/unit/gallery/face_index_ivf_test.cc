// FaceIndex's inverted-file layout (galleries from FaceIndexOptions::approximate_from on) on
// synthetic face-like embeddings, fed GalleryChanges directly as any store would: recall against
// brute force, exact distances, deletes and re-enrolments, the layout switches, and one thread per
// search.
#include <dirent.h>
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/common/status_macros.h"
#include "partner_node/gallery/face_index.h"

namespace fedface::partner {
namespace {

constexpr char kModel[] = "m1";
constexpr int kPerSubject = 3;

Embedding Unit(Embedding e) {
  double norm = 0;
  for (float v : e) norm += double{v} * v;
  for (float& v : e) v = static_cast<float>(v / std::sqrt(norm));
  return e;
}

// Subjects ~1.0 apart around a common direction, their photos ~0.3-0.6 apart (like dlib's).
class SyntheticFaces {
 public:
  Embedding NewCentre() {
    std::normal_distribution<float> normal(0.f, 1.f / std::sqrt(float{kEmbeddingDim}));
    Embedding c;
    for (int d = 0; d < kEmbeddingDim; ++d) c[d] = (d == 0 ? 1.f : 0.f) + normal(rng_);
    return Unit(c);
  }
  Embedding Photo(const Embedding& centre) {
    std::normal_distribution<float> normal(0.f, 0.32f / std::sqrt(float{kEmbeddingDim}));
    Embedding e = centre;
    for (float& v : e) v += normal(rng_);
    return Unit(e);
  }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_{4242};
};

float Distance(const Embedding& a, const Embedding& b) {
  double sum = 0;
  for (int d = 0; d < kEmbeddingDim; ++d) sum += (double{a[d]} - b[d]) * (double{a[d]} - b[d]);
  return static_cast<float>(std::sqrt(sum));
}

class FaceIndexIvfTest : public ::testing::Test {
 protected:
  static FaceIndexOptions Options() {
    FaceIndexOptions o;
    o.approximate_from = 4000;  // small enough for a unit test, same code as at 1M
    return o;
  }

  // Enrols `subjects` new subjects (kPerSubject photos each) in one change.
  GalleryChange Enrol(int subjects) {
    GalleryChange change;
    for (int s = 0; s < subjects; ++s) {
      const int64_t subject_id = static_cast<int64_t>(centres_.size()) + 1;
      centres_.push_back(faces_.NewCentre());
      for (int p = 0; p < kPerSubject; ++p) change.added.push_back(Stored(subject_id));
    }
    return change;
  }

  StoredEmbedding Stored(int64_t subject_id) {
    StoredEmbedding e;
    e.id = next_id_++;
    e.subject_id = subject_id;
    e.subject = "subject_" + std::to_string(subject_id);
    e.model_version = kModel;
    e.embedding = faces_.Photo(centres_[subject_id - 1]);
    live_[e.id] = e;
    return e;
  }

  GalleryChange DeleteSubject(int64_t subject_id) {
    GalleryChange change;
    for (auto it = live_.begin(); it != live_.end();) {
      if (it->second.subject_id == subject_id) {
        change.removed_embedding_ids.push_back(it->first);
        it = live_.erase(it);
      } else {
        ++it;
      }
    }
    return change;
  }

  const StoredEmbedding* Nearest(const Embedding& probe) const {
    const StoredEmbedding* best = nullptr;
    float best_d = 0;
    for (const auto& [id, e] : live_) {
      const float d = Distance(probe, e.embedding);
      if (!best || d < best_d) best = &e, best_d = d;
    }
    return best;
  }

  // Mated probes (new photos of live subjects): the fraction whose top-1 subject is brute
  // force's; every distance returned must be the exact distance to the embedding named.
  double RecallAt1(const FaceIndex& index, int probes) {
    std::vector<int64_t> subjects;
    for (const auto& [id, e] : live_) subjects.push_back(e.subject_id);
    std::sort(subjects.begin(), subjects.end());
    subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
    int hits = 0;
    for (int q = 0; q < probes; ++q) {
      const int64_t subject = subjects[faces_.rng()() % subjects.size()];
      const Embedding probe = faces_.Photo(centres_[subject - 1]);
      auto got = index.Search(probe, 10);
      EXPECT_TRUE(got.ok()) << got.status();
      if (!got.ok() || got->empty()) continue;
      for (const FaceCandidate& c : *got) {
        auto stored = live_.find(c.embedding_id);
        EXPECT_NE(stored, live_.end()) << "embedding " << c.embedding_id << " is not live";
        if (stored == live_.end()) continue;
        EXPECT_EQ(c.subject_id, stored->second.subject_id);
        EXPECT_NEAR(c.distance, Distance(probe, stored->second.embedding), 1e-5);
      }
      hits += got->front().subject_id == Nearest(probe)->subject_id ? 1 : 0;
    }
    return static_cast<double>(hits) / probes;
  }

  SyntheticFaces faces_;
  std::vector<Embedding> centres_;                     // subject id - 1 -> centre
  std::unordered_map<int64_t, StoredEmbedding> live_;  // what a store would hold now
  int64_t next_id_ = 1;
};

TEST_F(FaceIndexIvfTest, RecallAgainstBruteForceWithExactDistances) {
  FaceIndex index(kModel, Options());
  ASSERT_TRUE(index.Apply(Enrol(4000)).ok());  // 12k embeddings
  ASSERT_TRUE(index.approximate());
  EXPECT_EQ(index.size(), 12000);
  EXPECT_GE(RecallAt1(index, 400), 0.99);
}

TEST_F(FaceIndexIvfTest, BuildFromAnySourceMatchesApply) {
  const GalleryChange all = Enrol(2000);
  auto index = FaceIndex::Build(
      [&all](const EmbeddingVisitor& each) {
        for (const StoredEmbedding& e : all.added) {
          RETURN_IF_ERROR(each(e));
        }
        StoredEmbedding other = all.added.front();  // another model's row is skipped
        other.id = 1 << 30;
        other.model_version = "m2";
        return each(other);
      },
      kModel, Options());
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_TRUE((*index)->approximate());
  EXPECT_EQ((*index)->size(), 6000);
  EXPECT_GE(RecallAt1(**index, 200), 0.99);
}

TEST_F(FaceIndexIvfTest, DeletesAndReenrolmentsKeepTheIndexEqualToTheStore) {
  FaceIndex index(kModel, Options());
  ASSERT_TRUE(index.Apply(Enrol(2000)).ok());
  ASSERT_TRUE(index.approximate());
  // Delete a tenth of the subjects; re-enrol (new photos, same ids: a changed file) another tenth.
  std::vector<Embedding> deleted_photos;
  for (int64_t s = 1; s <= 2000; s += 10) {
    for (const auto& [id, e] : live_) {
      if (e.subject_id == s) deleted_photos.push_back(e.embedding);
    }
    ASSERT_TRUE(index.Apply(DeleteSubject(s)).ok());
  }
  GalleryChange replaced;
  for (auto& [id, e] : live_) {
    if (e.subject_id % 10 != 5) continue;
    e.embedding = faces_.Photo(centres_[e.subject_id - 1]);
    replaced.removed_embedding_ids.push_back(id);
    replaced.added.push_back(e);
  }
  ASSERT_TRUE(index.Apply(replaced).ok());
  ASSERT_TRUE(index.approximate());
  EXPECT_EQ(index.size(), static_cast<int64_t>(live_.size()));

  // A stored photo as the probe finds itself (its list is always probed) at distance 0.
  for (const auto& [id, e] : live_) {
    if (id % 37 != 0) continue;
    auto got = index.Search(e.embedding, 1);
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ((*got)[0].subject_id, e.subject_id);
    EXPECT_NEAR((*got)[0].distance, 0.f, 1e-5);
  }
  // A deleted photo never comes back; replaced photos are searched at their new place.
  for (const Embedding& photo : deleted_photos) {
    auto got = index.Search(photo, 3);
    ASSERT_TRUE(got.ok());
    for (const FaceCandidate& c : *got) EXPECT_EQ(live_.count(c.embedding_id), 1u);
  }
  EXPECT_GE(RecallAt1(index, 300), 0.99);
}

TEST_F(FaceIndexIvfTest, SwitchesLayoutBySizeAndRetrainsAsTheGalleryGrows) {
  FaceIndex index(kModel, Options());
  ASSERT_TRUE(index.Apply(Enrol(1000)).ok());  // 3000 < 4000: exact
  EXPECT_FALSE(index.approximate());
  for (int step = 0; step < 4;
       ++step) {  // to 3000 + 4 * 2400 = 12600: IVF, retrained past 2 x 5400
    ASSERT_TRUE(index.Apply(Enrol(800)).ok());
    EXPECT_TRUE(index.approximate());
    EXPECT_EQ(index.size(), static_cast<int64_t>(live_.size()));
  }
  EXPECT_GE(RecallAt1(index, 200), 0.99);
  for (int64_t s = 1; s <= 3600; ++s) ASSERT_TRUE(index.Apply(DeleteSubject(s)).ok());
  EXPECT_EQ(index.size(), 1800);  // below half of approximate_from: exact again
  EXPECT_FALSE(index.approximate());
  EXPECT_EQ(RecallAt1(index, 200), 1.0);
}

TEST_F(FaceIndexIvfTest, ATopKBeyondTheProbedListsWidensToEverySubject) {
  FaceIndex index(kModel, Options());
  ASSERT_TRUE(index.Apply(Enrol(1500)).ok());
  ASSERT_TRUE(index.approximate());
  const Embedding probe = faces_.Photo(centres_[7]);
  auto got = index.Search(probe, 10000);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1500u);  // every subject, each at its best distance
  std::set<int64_t> subjects;
  for (const FaceCandidate& c : *got) subjects.insert(c.subject_id);
  EXPECT_EQ(subjects.size(), 1500u);
  EXPECT_EQ(got->front().subject_id, Nearest(probe)->subject_id);
  EXPECT_TRUE(std::is_sorted(got->begin(), got->end(),
                             [](const auto& a, const auto& b) { return a.distance < b.distance; }));
}

int ThreadsInProcess() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (dirent* entry = readdir(dir)) n += entry->d_name[0] != '.' ? 1 : 0;
    closedir(dir);
  }
  return n;
}

// The local API admits one core per request: a search must not start OpenMP threads, even on a
// thread that would allow them, and leaves that thread's setting as it was.
TEST_F(FaceIndexIvfTest, SearchRunsOnTheCallingThreadOnly) {
  FaceIndex index(kModel, Options());
  ASSERT_TRUE(index.Apply(Enrol(2000)).ok());
  ASSERT_TRUE(index.approximate());
  const Embedding probe = faces_.Photo(centres_[3]);
  int before = 0, after = 0, max_threads_after = 0;
  bool ok = false;
  std::thread caller([&] {
    omp_set_num_threads(4);  // a fresh thread's OpenMP would start a team of 4 for FAISS
    before = ThreadsInProcess();
    ok = index.Search(probe, 5).ok() && index.Search(probe, 10000).ok();
    after = ThreadsInProcess();
    max_threads_after = omp_get_max_threads();
  });
  caller.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(after, before) << "the search started threads";
  EXPECT_EQ(max_threads_after, 4);
}

}  // namespace
}  // namespace fedface::partner
