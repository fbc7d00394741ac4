// FAISS 1:N search against brute force over the same store, before and after deletes and
// replacements.
#include "partner_node/gallery/face_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/support/test_env.h"
#include "tests/unit/gallery/gallery_test_util.h"

namespace fedface::partner {
namespace {

constexpr char kModel[] = "m1";

Embedding RandomUnit(std::mt19937& rng) {
  std::normal_distribution<float> normal;
  Embedding e;
  double norm = 0;
  for (float& v : e) {
    v = normal(rng);
    norm += double{v} * v;
  }
  for (float& v : e) v = static_cast<float>(v / std::sqrt(norm));
  return e;
}

// Best distance per subject over `all` (every embedding of kModel in the store), sorted.
std::vector<FaceCandidate> BruteForce(const std::vector<StoredEmbedding>& all,
                                      const Embedding& probe, int top_k) {
  std::map<int64_t, FaceCandidate> best;
  for (const StoredEmbedding& e : all) {
    double sum = 0;
    for (int d = 0; d < kEmbeddingDim; ++d) {
      const double diff = double{probe[d]} - e.embedding[d];
      sum += diff * diff;
    }
    const float dist = static_cast<float>(std::sqrt(sum));
    auto it = best.find(e.subject_id);
    if (it == best.end() || dist < it->second.distance) {
      best[e.subject_id] = FaceCandidate{e.subject_id, e.subject, dist, e.id};
    }
  }
  std::vector<FaceCandidate> out;
  for (auto& [id, c] : best) out.push_back(c);
  std::sort(out.begin(), out.end(), [](const FaceCandidate& a, const FaceCandidate& b) {
    return a.distance != b.distance ? a.distance < b.distance : a.subject_id < b.subject_id;
  });
  if (static_cast<int>(out.size()) > top_k) out.resize(top_k);
  return out;
}

class FaceIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = testing::MakeTempDir("face-index");
    auto store = OpenGalleryStore(SqliteGallerySpec(dir + "/gallery.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    // 300 images over 60 subjects, every fourth image with two faces: ~375 embeddings.
    std::vector<ImageOutcome> batch;
    for (int i = 0; i < 300; ++i) {
      ImageOutcome o;
      o.subject = "subject_" + std::to_string(rng_() % 60);
      o.relative_path = o.subject + "/" + std::to_string(i) + ".jpg";
      o.content_sha256 = Sha256Hex("content " + std::to_string(i));
      o.model_version = kModel;
      o.faces.push_back(RandomUnit(rng_));
      if (i % 4 == 0) o.faces.push_back(RandomUnit(rng_));
      batch.push_back(std::move(o));
      if (batch.size() == 50) {
        ASSERT_TRUE(store_->CommitBatch(batch).ok());
        batch.clear();
      }
    }
    auto index = FaceIndex::Build(*store_, kModel);
    ASSERT_TRUE(index.ok()) << index.status();
    index_ = std::move(*index);
  }

  // Probes: random points, and points near stored embeddings (so the top hits are close).
  std::vector<Embedding> Probes() {
    std::vector<Embedding> probes;
    auto all = *store_->Embeddings(kModel);
    std::normal_distribution<float> noise(0.f, 0.02f);
    for (int i = 0; i < 20; ++i) probes.push_back(RandomUnit(rng_));
    for (int i = 0; i < 20; ++i) {
      Embedding e = all[rng_() % all.size()].embedding;
      for (float& v : e) v += noise(rng_);
      probes.push_back(e);
    }
    return probes;
  }

  void ExpectSameAsBruteForce(const FaceIndex& index) {
    const int subjects = static_cast<int>(store_->Subjects()->size());
    const std::vector<StoredEmbedding> all = *store_->Embeddings(kModel);
    for (const Embedding& probe : Probes()) {
      for (int top_k : {1, 5, 20, subjects + 5}) {
        auto got = index.Search(probe, top_k);
        ASSERT_TRUE(got.ok()) << got.status();
        const auto want = BruteForce(all, probe, top_k);
        ASSERT_EQ(got->size(), want.size()) << "top_k " << top_k;
        for (size_t r = 0; r < want.size(); ++r) {
          EXPECT_EQ((*got)[r].subject_id, want[r].subject_id) << "rank " << r;
          EXPECT_EQ((*got)[r].subject, want[r].subject) << "rank " << r;
          EXPECT_NEAR((*got)[r].distance, want[r].distance, 1e-4) << "rank " << r;
          EXPECT_EQ((*got)[r].embedding_id, want[r].embedding_id) << "rank " << r;
        }
      }
    }
  }

  std::mt19937 rng_{98765};
  std::unique_ptr<GalleryStore> store_;
  std::unique_ptr<FaceIndex> index_;
};

TEST_F(FaceIndexTest, SearchEqualsBruteForce) {
  EXPECT_EQ(index_->size(), store_->Counts(kModel)->embeddings);
  EXPECT_GT(index_->size(), 300);
  ExpectSameAsBruteForce(*index_);
}

TEST_F(FaceIndexTest, SearchEqualsBruteForceAfterDeletesAndReplacements) {
  auto subjects = *store_->Subjects();
  for (int s = 0; s < 15; ++s) {
    auto change = store_->DeleteSubject(subjects[s * 3].name);
    ASSERT_TRUE(change.ok()) << change.status();
    ASSERT_TRUE(index_->Apply(*change).ok());
  }
  // Changed files: new content replaces old rows (removed ids + added rows in one change).
  std::vector<ImageOutcome> replacements;
  const std::vector<std::string> paths = *store_->FilePaths();
  for (const std::string& path : paths) {
    if (replacements.size() == 20) break;
    ImageOutcome o;
    o.subject = path.substr(0, path.find('/'));
    o.relative_path = path;
    o.content_sha256 = Sha256Hex("changed " + path);
    o.model_version = kModel;
    o.faces.push_back(RandomUnit(rng_));
    replacements.push_back(std::move(o));
  }
  auto change = store_->CommitBatch(replacements);
  ASSERT_TRUE(change.ok()) << change.status();
  ASSERT_FALSE(change->removed_embedding_ids.empty());
  ASSERT_TRUE(index_->Apply(*change).ok());

  EXPECT_EQ(index_->size(), store_->Counts(kModel)->embeddings);
  ExpectSameAsBruteForce(*index_);
  // And an index rebuilt from the store on open agrees too.
  auto rebuilt = FaceIndex::Build(*store_, kModel);
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ((*rebuilt)->size(), index_->size());
  ExpectSameAsBruteForce(**rebuilt);
}

TEST_F(FaceIndexTest, HoldsOnlyItsModelVersion) {
  const int64_t before = index_->size();
  ImageOutcome other = testutil::Enrolled("subject_0", "subject_0/new.jpg", "new", "m2", 1, 3);
  auto change = store_->CommitBatch({other});
  ASSERT_TRUE(change.ok());
  ASSERT_TRUE(index_->Apply(*change).ok());
  EXPECT_EQ(index_->size(), before);
  auto m2 = FaceIndex::Build(*store_, "m2");
  ASSERT_TRUE(m2.ok());
  EXPECT_EQ((*m2)->size(), 1);
  auto hit = (*m2)->Search(testutil::MakeEmbedding(3), 3);
  ASSERT_TRUE(hit.ok());
  ASSERT_EQ(hit->size(), 1u);
  EXPECT_EQ((*hit)[0].subject, "subject_0");
  EXPECT_NEAR((*hit)[0].distance, 0.f, 1e-4);
}

TEST_F(FaceIndexTest, ReaddingAnIdReplacesItInsteadOfDuplicating) {
  auto all = *store_->Embeddings(kModel);
  GalleryChange again;
  again.added = {all[0], all[1]};
  const int64_t before = index_->size();
  ASSERT_TRUE(index_->Apply(again).ok());
  EXPECT_EQ(index_->size(), before);
  ExpectSameAsBruteForce(*index_);
}

TEST_F(FaceIndexTest, RejectsBadQueries) {
  Embedding nan = testutil::MakeEmbedding(1);
  nan[3] = std::nanf("");
  EXPECT_EQ(index_->Search(nan, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index_->Search(testutil::MakeEmbedding(1), 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index_->Search(testutil::MakeEmbedding(1), 10001).status().code(),
            absl::StatusCode::kInvalidArgument);
  GalleryChange bad;
  bad.added.push_back(store_->Embeddings(kModel)->front());
  bad.added[0].embedding[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(index_->Apply(bad).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FaceIndexEmptyTest, EmptyIndexFindsNobody) {
  FaceIndex index(kModel);
  auto got = index.Search(testutil::MakeEmbedding(1), 5);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());
}

}  // namespace
}  // namespace fedface::partner
