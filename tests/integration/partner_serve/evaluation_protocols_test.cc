// The evaluation protocols over synthetic cohorts (random unit-scale embeddings): which
// comparisons and searches run, that seeded choices repeat, that contribution bounds hold, and
// that the histograms equal what the shared metric library computes from the same distances.
#include "partner_node/serve/evaluation_protocols.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "core/metrics/identification_metrics.h"
#include "core/metrics/score_histogram.h"

namespace fedface::partner {
namespace {

using fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
using fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;

Embedding RandomEmbedding(std::mt19937& rng, float scale) {
  std::normal_distribution<float> n(0.f, scale);
  Embedding e{};
  for (float& x : e) x = n(rng);
  return e;
}

// Subjects with the given image counts; each subject's images sit close to its own centre, so
// mated distances are small (~0.3) and non-mated ones large (~1.4).
EvaluationCohort MakeCohort(const std::vector<int>& images_per_subject, unsigned seed = 1) {
  std::mt19937 rng(seed);
  EvaluationCohort c;
  c.model_version = "1.0.0";
  int64_t key = 100;
  for (int n : images_per_subject) {
    CohortSubject s;
    s.key = key++;
    const Embedding centre = RandomEmbedding(rng, 0.09f);
    for (int i = 0; i < n; ++i) {
      Embedding e = RandomEmbedding(rng, 0.02f);
      for (int d = 0; d < kEmbeddingDim; ++d) e[d] += centre[d];
      s.images.push_back(e);
    }
    c.subjects.push_back(std::move(s));
    c.images_attempted += n;
  }
  c.subjects_attempted = static_cast<int64_t>(images_per_subject.size());
  return c;
}

std::vector<double> AllDistances(const EvaluationCohort& c, bool mated) {
  std::vector<const Embedding*> e;
  std::vector<size_t> owner;
  for (size_t s = 0; s < c.subjects.size(); ++s) {
    for (const Embedding& x : c.subjects[s].images) {
      e.push_back(&x);
      owner.push_back(s);
    }
  }
  std::vector<double> out;
  for (size_t i = 0; i < e.size(); ++i) {
    for (size_t j = i + 1; j < e.size(); ++j) {
      if ((owner[i] == owner[j]) == mated) out.push_back(EuclideanDistance(*e[i], *e[j]));
    }
  }
  return out;
}

TEST(EvaluationProtocolsTest, VerificationComparesEveryMatedAndNonMatedPair) {
  const EvaluationCohort cohort = MakeCohort({1, 2, 3, 4, 5});
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, ProtocolOptions{});
  ASSERT_TRUE(a.ok()) << a.status();
  // Mated: 0 + 1 + 3 + 6 + 10; all pairs of 15 images: 105.
  EXPECT_EQ(a->cohort.mated_comparisons, 20);
  EXPECT_EQ(a->cohort.non_mated_comparisons, 85);
  EXPECT_EQ(a->cohort.mated_subjects, 4);  // the single-image subject has no mated pair
  EXPECT_EQ(a->cohort.non_mated_subjects, 5);
  EXPECT_EQ(a->cohort.subjects, 5);
  EXPECT_EQ(a->cohort.images, 15);
  EXPECT_FALSE(a->bounded.has_value());
  EXPECT_EQ(a->genuine.counts(),
            metrics::ScoreHistogram::FromDistances(AllDistances(cohort, true))->counts());
  EXPECT_EQ(a->impostor.counts(),
            metrics::ScoreHistogram::FromDistances(AllDistances(cohort, false))->counts());
}

TEST(EvaluationProtocolsTest, NonMatedSampleIsExactSizeAndRepeatsForTheSameSeed) {
  const EvaluationCohort cohort = MakeCohort({4, 4, 4, 4, 4, 4});  // 240 non-mated pairs
  ProtocolOptions options;
  options.seed = 7;
  options.non_mated_sample_size = 50;
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  absl::StatusOr<EvaluationAggregate> again =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  options.seed = 8;
  absl::StatusOr<EvaluationAggregate> other =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  ASSERT_TRUE(a.ok() && again.ok() && other.ok());
  EXPECT_EQ(a->cohort.non_mated_comparisons, 50);
  EXPECT_DOUBLE_EQ(a->impostor.total(), 50);
  EXPECT_EQ(a->cohort.mated_comparisons, 36);  // mated pairs are never sampled
  EXPECT_EQ(a->impostor.counts(), again->impostor.counts());
  EXPECT_NE(a->impostor.counts(), other->impostor.counts());
  // A sample at least as large as the population is the population.
  options.non_mated_sample_size = 10000;
  absl::StatusOr<EvaluationAggregate> all =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->cohort.non_mated_comparisons, 240);
}

TEST(EvaluationProtocolsTest, SampledPairsAreDistinctNonMatedPairs) {
  // Every non-mated pair of 3 subjects x 1 image has its own distance; sampling all but one of
  // the 3 pairs must give 2 different pairs, never a mated one or a repeat.
  const EvaluationCohort cohort = MakeCohort({1, 1, 1}, 3);
  const std::vector<double> all = AllDistances(cohort, false);
  ASSERT_EQ(all.size(), 3u);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ProtocolOptions options;
    options.seed = seed;
    options.non_mated_sample_size = 2;
    absl::StatusOr<EvaluationAggregate> a =
        RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
    ASSERT_TRUE(a.ok());
    EXPECT_DOUBLE_EQ(a->impostor.total(), 2);
    int bins_used = 0;
    for (double c : a->impostor.counts()) bins_used += c > 0;
    EXPECT_GE(bins_used, 1);
    // Distinct pairs can share a bin, but no bin may hold more than the pairs that fall in it.
    for (int b = 0; b < metrics::kScoreBinCount; ++b) {
      double possible = 0;
      for (double d : all) possible += metrics::ScoreBinIndex(d) == b;
      EXPECT_LE(a->impostor.count(b), possible) << "bin " << b << " seed " << seed;
    }
  }
}

TEST(EvaluationProtocolsTest, BoundedVerificationKeepsEverySubjectWithinC) {
  const EvaluationCohort cohort = MakeCohort(std::vector<int>(12, 6));
  ProtocolOptions options;
  options.seed = 3;
  options.contribution_bound = 2;
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->bounded.has_value());
  EXPECT_EQ(a->bounded->contribution_bound(), 2);
  // At most c mated pairs per subject, at most c non-mated comparisons per subject (each counts
  // for two subjects).
  EXPECT_LE(a->cohort.mated_comparisons, 12 * 2);
  EXPECT_GT(a->cohort.mated_comparisons, 0);
  EXPECT_LE(a->cohort.non_mated_comparisons, 12 * 2 / 2);
  EXPECT_GT(a->cohort.non_mated_comparisons, 0);
  EXPECT_EQ(a->genuine.counts(), a->bounded->genuine().counts());
  EXPECT_DOUBLE_EQ(a->genuine.total(), static_cast<double>(a->cohort.mated_comparisons));
}

// Release layout 2: the partner's (c_g, c_i) plan the comparisons; what the vendor's request
// controls (its seed and non-mated sample size) picks WHICH comparisons, never how many per
// subject or the bounds the release will state.
TEST(EvaluationProtocolsTest, TheRequestCannotMoveTheVerificationBounds) {
  const EvaluationCohort cohort = MakeCohort(std::vector<int>(20, 5));
  for (uint64_t seed : {1ULL, 99ULL, ~0ULL}) {
    for (uint64_t sample : {0ULL, 1ULL, 1000000ULL}) {
      ProtocolOptions options;
      options.seed = seed;
      options.non_mated_sample_size = sample;
      options.contribution_bound = 10;
      options.verification_bounds = {3, 4};
      absl::StatusOr<EvaluationAggregate> a =
          RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
      ASSERT_TRUE(a.ok()) << a.status();
      ASSERT_TRUE(a->bounded.has_value());
      EXPECT_EQ(a->bounded->bounds().genuine, 3);
      EXPECT_EQ(a->bounded->bounds().impostor, 4);
      // 3 of each subject's 10 own pairs; the ring's next 2 subjects for each of 20.
      EXPECT_EQ(a->cohort.mated_comparisons, 20 * 3) << seed << " " << sample;
      EXPECT_EQ(a->cohort.non_mated_comparisons, 20 * 2) << seed << " " << sample;
      double layout_two = 0;
      for (double c : a->bounded->impostor_v2()) layout_two += c;
      EXPECT_EQ(layout_two, 40);
    }
  }
}

TEST(EvaluationProtocolsTest, IdentificationEnrolsOneImageAndHoldsOutSeededSubjects) {
  const EvaluationCohort cohort = MakeCohort({3, 3, 3, 3, 3, 3, 3, 3, 3, 3});
  ProtocolOptions options;
  options.seed = 11;
  options.identification_holdout_percent = 30;
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_IDENTIFICATION, options);
  ASSERT_TRUE(a.ok()) << a.status();
  // 3 subjects held out (9 non-mated searches); 7 in the gallery, 2 mated searches each.
  EXPECT_EQ(a->cohort.non_mated_subjects, 3);
  EXPECT_EQ(a->cohort.non_mated_comparisons, 9);
  EXPECT_EQ(a->cohort.mated_subjects, 7);
  EXPECT_EQ(a->cohort.mated_comparisons, 14);
  // Well-separated subjects: every mate found at rank 1, so no miss in the overflow bin.
  EXPECT_DOUBLE_EQ(a->genuine.total(), 14);
  EXPECT_DOUBLE_EQ(a->genuine.count(metrics::kScoreBinCount - 1), 0);
  EXPECT_EQ(metrics::Rank1RateFromHistogram(a->genuine), 1.0);
  EXPECT_DOUBLE_EQ(a->impostor.total(), 9);
  // Another seed holds out other subjects (the non-mated histogram changes).
  options.seed = 12;
  absl::StatusOr<EvaluationAggregate> b =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_IDENTIFICATION, options);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(a->impostor.counts(), b->impostor.counts());
}

TEST(EvaluationProtocolsTest, IdentificationCountsRankOneMissesInTheOverflowBin) {
  // Overlapping subjects (images spread more than subjects) so that some searches miss.
  std::mt19937 rng(5);
  EvaluationCohort cohort;
  cohort.model_version = "1.0.0";
  for (int s = 0; s < 20; ++s) {
    CohortSubject subject{200 + s, {}};
    const Embedding centre = RandomEmbedding(rng, 0.03f);
    for (int i = 0; i < 3; ++i) {
      Embedding e = RandomEmbedding(rng, 0.05f);
      for (int d = 0; d < kEmbeddingDim; ++d) e[d] += centre[d];
      subject.images.push_back(e);
    }
    cohort.subjects.push_back(subject);
  }
  cohort.subjects_attempted = 20;
  cohort.images_attempted = 60;
  ProtocolOptions options;
  options.seed = 2;
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_IDENTIFICATION, options);
  ASSERT_TRUE(a.ok());
  // Every mated search is either a rank-1 hit (a finite bin) or a miss (the overflow bin).
  const double misses = a->genuine.count(metrics::kScoreBinCount - 1);
  EXPECT_DOUBLE_EQ(a->genuine.total(), static_cast<double>(a->cohort.mated_comparisons));
  EXPECT_GT(misses, 0) << "random identities should confuse some searches";
  EXPECT_LT(misses, a->genuine.total());
  EXPECT_DOUBLE_EQ(a->impostor.count(metrics::kScoreBinCount - 1), 0);  // gallery never empty
}

TEST(EvaluationProtocolsTest, BoundedIdentificationSearchesAtMostCPerSubject) {
  const EvaluationCohort cohort = MakeCohort(std::vector<int>(10, 8));
  ProtocolOptions options;
  options.seed = 1;
  options.contribution_bound = 2;
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_IDENTIFICATION, options);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(a->bounded.has_value());
  EXPECT_EQ(a->cohort.mated_comparisons + a->cohort.non_mated_comparisons, 10 * 2);
}

TEST(EvaluationProtocolsTest, RefusesMoreComparisonsThanTheLimit) {
  const EvaluationCohort cohort = MakeCohort({5, 5, 5, 5});
  ProtocolOptions options;
  options.max_comparisons = 100;  // 150 non-mated pairs
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(a.status().message().find("non_mated_sample_size"), std::string::npos);
  options.non_mated_sample_size = 100;  // a sample within the limit runs
  EXPECT_TRUE(RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options).ok());
}

TEST(EvaluationProtocolsTest, StopsWhenInterrupted) {
  const EvaluationCohort cohort = MakeCohort(std::vector<int>(40, 5));  // ~19000 pairs
  ProtocolOptions options;
  int polls = 0;
  options.interrupted = [&]() -> absl::Status {
    return ++polls >= 2 ? absl::DeadlineExceededError("late") : absl::OkStatus();
  };
  absl::StatusOr<EvaluationAggregate> a =
      RunEvaluationProtocol(cohort, EVALUATION_PROTOCOL_VERIFICATION, options);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(EvaluationProtocolsTest, EmptyCohortGivesEmptyHistograms) {
  EvaluationCohort cohort;
  cohort.model_version = "1.0.0";
  for (auto protocol : {EVALUATION_PROTOCOL_VERIFICATION, EVALUATION_PROTOCOL_IDENTIFICATION}) {
    absl::StatusOr<EvaluationAggregate> a = RunEvaluationProtocol(cohort, protocol, {});
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_DOUBLE_EQ(a->genuine.total(), 0);
    EXPECT_DOUBLE_EQ(a->impostor.total(), 0);
  }
}

}  // namespace
}  // namespace fedface::partner
