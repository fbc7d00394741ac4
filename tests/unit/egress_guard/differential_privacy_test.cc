// The Laplace mechanism's calibration and the contribution-bounding sampler.
#include "partner_node/egress/differential_privacy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <vector>

namespace fedface::partner {
namespace {

struct Moments {
  double mean = 0;
  double variance = 0;
};
Moments MomentsOf(const std::vector<double>& x) {
  Moments m;
  for (double v : x) m.mean += v;
  m.mean /= static_cast<double>(x.size());
  for (double v : x) m.variance += (v - m.mean) * (v - m.mean);
  m.variance /= static_cast<double>(x.size() - 1);
  return m;
}

TEST(DifferentialPrivacy, LaplaceDrawsHaveMeanZeroAndVarianceTwoBSquared) {
  SeededNoiseSource noise(20240611);
  const double b = 2.5;
  const int n = 200000;
  std::vector<double> x;
  for (int k = 0; k < n; ++k) x.push_back(SampleLaplace(b, noise));
  const Moments m = MomentsOf(x);
  // Standard error of the mean: sqrt(2 b^2 / n) = 0.0079; allow 5 of them.
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(2 * b * b / n));
  // Laplace kurtosis is 6, so the sample variance has relative s.d. sqrt(5/n)*... ~ 0.5%;
  // allow 3% (6 s.d.).
  EXPECT_NEAR(m.variance, 2 * b * b, 0.03 * 2 * b * b);
  // Median of |x| is b ln 2 for Laplace (and not for, say, a Gaussian of equal variance).
  std::vector<double> a;
  for (double v : x) a.push_back(std::fabs(v));
  std::nth_element(a.begin(), a.begin() + n / 2, a.end());
  EXPECT_NEAR(a[n / 2], b * std::log(2.0), 0.03 * b);
}

TEST(DifferentialPrivacy, UniformDrawsStayInsideTheOpenInterval) {
  SeededNoiseSource noise(1);
  for (int k = 0; k < 100000; ++k) {
    const double u = noise.Uniform01();
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_TRUE(std::isfinite(SampleLaplace(1.0, noise)));
  }
  auto secure = MakeSecureNoiseSource();
  std::set<double> seen;
  for (int k = 0; k < 1000; ++k) seen.insert(secure->Uniform01());
  EXPECT_GT(seen.size(), 990u);  // not a constant or a short cycle
}

TEST(DifferentialPrivacy, ScaleIsFourCOverEpsilon) {
  EXPECT_DOUBLE_EQ(HistogramLaplaceScale(10, 1.0), 40.0);
  EXPECT_DOUBLE_EQ(HistogramLaplaceScale(1, 0.5), 8.0);
}

// Histogram counts of 1000 everywhere (so clamping at 0 never happens): the noise added to
// every bin of both histograms over many seeded releases must be Laplace(4c/epsilon).
TEST(DifferentialPrivacy, HistogramNoiseMatchesCalibrationOverManyDraws) {
  const int c = 1;
  const double epsilon = 1.0;
  std::vector<AttributedScore> genuine, impostor;
  int64_t subject = 0;
  for (int bin = 0; bin < metrics::kScoreBinCount; ++bin) {
    for (int k = 0; k < 1000; ++k) {
      const double d = metrics::ScoreBinCentre(bin);
      genuine.push_back({subject, subject, d});
      ++subject;
      impostor.push_back({subject, subject + 1, d});
      subject += 2;
    }
  }
  absl::StatusOr<ContributionBoundedHistograms> bounded =
      ContributionBoundedHistograms::Build(c, genuine, impostor);
  ASSERT_TRUE(bounded.ok()) << bounded.status();
  EXPECT_EQ(bounded->genuine().count(metrics::kScoreRegularBins), 1000.0);  // +inf centre

  SeededNoiseSource noise(99);
  std::vector<double> deltas;
  for (int draw = 0; draw < 50; ++draw) {
    const NoisyHistograms noisy = AddLaplaceNoise(*bounded, epsilon, noise);
    EXPECT_DOUBLE_EQ(noisy.laplace_scale, 4.0);
    for (int bin = 0; bin < metrics::kScoreBinCount; ++bin) {
      deltas.push_back(noisy.genuine.count(bin) - 1000.0);
      deltas.push_back(noisy.impostor.count(bin) - 1000.0);
    }
  }
  const double b = 4.0;
  const Moments m = MomentsOf(deltas);
  const double n = static_cast<double>(deltas.size());  // 20100
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(2 * b * b / n));
  EXPECT_NEAR(m.variance, 2 * b * b, 0.08 * 2 * b * b);  // relative s.d. ~1.6%
}

TEST(DifferentialPrivacy, ConsistencyMakesCumulativeCountsMonotone) {
  // Cumulative {1, -1, 2}: the first two pool to 0, so the counts become {0, 0, 2}.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{1, -2, 3}), (std::vector<double>{0, 0, 2}));
  // Already consistent: unchanged.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{5, 0.5, 7}), (std::vector<double>{5, 0.5, 7}));
  // Negative total: nothing.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{-1, -1}), (std::vector<double>{0, 0}));
  // Cumulative {4, 1, 3, 6}: {4, 1} pool to 2.5, then {2.5, 2.5, 3} stays, total 6.
  const std::vector<double> c = ConsistentCounts(std::vector<double>{4, -3, 2, 3});
  ASSERT_EQ(c.size(), 4u);
  EXPECT_DOUBLE_EQ(c[0], 2.5);
  EXPECT_DOUBLE_EQ(c[1], 0.0);
  EXPECT_DOUBLE_EQ(c[2], 0.5);
  EXPECT_DOUBLE_EQ(c[3], 3.0);
}

TEST(DifferentialPrivacy, NoisyCountsAreNeverNegative) {
  std::vector<AttributedScore> one = {{1, 1, 0.3}};
  absl::StatusOr<ContributionBoundedHistograms> bounded =
      ContributionBoundedHistograms::Build(1, one, one);
  ASSERT_TRUE(bounded.ok());
  SeededNoiseSource noise(5);
  const NoisyHistograms noisy = AddLaplaceNoise(*bounded, 0.5, noise);
  int zeros = 0;
  for (double v : noisy.impostor.counts()) {
    EXPECT_GE(v, 0.0);
    zeros += v == 0.0;
  }
  EXPECT_GT(zeros, 50);  // about half the empty bins drew negative noise and were clamped
}

TEST(DifferentialPrivacy, BoundedHistogramsRefuseASubjectOverTheBound) {
  // Subject 1 behind 3 impostor entries (twice as x, once as y) with c = 2.
  const std::vector<AttributedScore> impostor = {{1, 2, 0.8}, {1, 3, 0.9}, {4, 1, 0.7}};
  absl::StatusOr<ContributionBoundedHistograms> h =
      ContributionBoundedHistograms::Build(2, {}, impostor);
  EXPECT_EQ(h.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ContributionBoundedHistograms::Build(3, {}, impostor).ok());
  const std::vector<AttributedScore> genuine = {{7, 7, 0.3}, {7, 7, 0.4}};
  EXPECT_FALSE(ContributionBoundedHistograms::Build(1, genuine, {}).ok());
  EXPECT_TRUE(ContributionBoundedHistograms::Build(2, genuine, {}).ok());
  const std::vector<AttributedScore> nan = {{7, 7, NAN}};
  EXPECT_EQ(ContributionBoundedHistograms::Build(2, nan, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<SubjectImages> Subjects(int n) {
  std::vector<SubjectImages> s;
  for (int k = 0; k < n; ++k) s.push_back({1000 + 7 * k, k % 9});  // 0..8 images
  return s;
}

TEST(DifferentialPrivacy, PlanRespectsContributionBound) {
  const std::vector<SubjectImages> subjects = Subjects(60);
  const int c = 3;
  const ComparisonPlan plan = PlanVerificationComparisons(subjects, c, 42);
  std::map<int64_t, int> images;
  for (const SubjectImages& s : subjects) images[s.subject] = s.images;
  std::map<int64_t, int> mated, non_mated;
  std::set<std::tuple<int64_t, int, int>> mated_pairs;
  for (const AttributedComparison& p : plan.mated) {
    EXPECT_EQ(p.subject_x, p.subject_y);
    EXPECT_LT(p.image_x, p.image_y);
    EXPECT_LT(p.image_y, images[p.subject_x]);
    EXPECT_TRUE(mated_pairs.insert({p.subject_x, p.image_x, p.image_y}).second) << "duplicate";
    ++mated[p.subject_x];
  }
  for (const AttributedComparison& p : plan.non_mated) {
    EXPECT_NE(p.subject_x, p.subject_y);
    EXPECT_LT(p.image_x, images[p.subject_x]);
    EXPECT_LT(p.image_y, images[p.subject_y]);
    ++non_mated[p.subject_x];
    ++non_mated[p.subject_y];
  }
  for (const auto& [subject, n] : mated) EXPECT_LE(n, c) << subject;
  for (const auto& [subject, n] : non_mated) EXPECT_LE(n, c) << subject;
  // Subjects with >= 3 images (4 of every 9) each get exactly c mated pairs.
  EXPECT_GE(plan.mated.size(), static_cast<size_t>(c * 60 * 5 / 9 - c));
  // Most slots are used: pairs where both sides have images.
  EXPECT_GT(plan.non_mated.size(), 50u);
  // The plan feeds Build without tripping the bound.
  std::vector<AttributedScore> g, i;
  for (const auto& p : plan.mated) g.push_back({p.subject_x, p.subject_y, 0.4});
  for (const auto& p : plan.non_mated) i.push_back({p.subject_x, p.subject_y, 0.9});
  EXPECT_TRUE(ContributionBoundedHistograms::Build(c, g, i).ok());
}

TEST(DifferentialPrivacy, PlanIsSeededAndChangingOneSubjectOnlyChangesItsComparisons) {
  std::vector<SubjectImages> subjects = Subjects(40);
  const ComparisonPlan a = PlanVerificationComparisons(subjects, 4, 7);
  const ComparisonPlan b = PlanVerificationComparisons(subjects, 4, 7);
  ASSERT_EQ(a.non_mated.size(), b.non_mated.size());
  for (size_t k = 0; k < a.non_mated.size(); ++k) {
    EXPECT_EQ(a.non_mated[k].subject_x, b.non_mated[k].subject_x);
    EXPECT_EQ(a.non_mated[k].image_y, b.non_mated[k].image_y);
  }
  const ComparisonPlan other_seed = PlanVerificationComparisons(subjects, 4, 8);
  bool differs = other_seed.non_mated.size() != a.non_mated.size();
  for (size_t k = 0; !differs && k < a.non_mated.size(); ++k) {
    differs = a.non_mated[k].subject_x != other_seed.non_mated[k].subject_x ||
              a.non_mated[k].subject_y != other_seed.non_mated[k].subject_y;
  }
  EXPECT_TRUE(differs);

  // Neighbouring dataset: subject #5 now has 8 images instead of 5 (or none at all). Every
  // comparison not involving it must be unchanged: that is what bounds the sensitivity.
  const int64_t changed = subjects[5].subject;
  auto without = [&](const ComparisonPlan& p) {
    std::set<std::tuple<int64_t, int, int64_t, int>> out;
    for (const auto& v : {p.mated, p.non_mated}) {
      for (const AttributedComparison& c : v) {
        if (c.subject_x != changed && c.subject_y != changed) {
          out.insert({c.subject_x, c.image_x, c.subject_y, c.image_y});
        }
      }
    }
    return out;
  };
  for (int images : {8, 0}) {
    subjects[5].images = images;
    const ComparisonPlan n = PlanVerificationComparisons(subjects, 4, 7);
    EXPECT_EQ(without(a), without(n)) << images;
  }
}

TEST(DifferentialPrivacy, ProbePlanTakesAtMostCImagesPerSubject) {
  const std::vector<SubjectImages> subjects = Subjects(30);
  const std::vector<AttributedComparison> probes = PlanBoundedProbes(subjects, 2, 3);
  std::map<int64_t, std::set<int>> per;
  for (const auto& p : probes) {
    EXPECT_EQ(p.subject_x, p.subject_y);
    EXPECT_TRUE(per[p.subject_x].insert(p.image_x).second);
  }
  for (const SubjectImages& s : subjects) {
    EXPECT_EQ(per[s.subject].size(), static_cast<size_t>(std::min(2, s.images)));
  }
}

}  // namespace
}  // namespace fedface::partner
