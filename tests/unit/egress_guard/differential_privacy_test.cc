// The discrete Laplace mechanism's calibration, the failure-rate mechanism and the
// contribution-bounding sampler.
#include "partner_node/egress/differential_privacy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
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

// Discrete Laplace of scale t: P(x) = (1 - a) / (1 + a) * a^|x| with a = exp(-1/t).
double DiscreteLaplacePmf(int64_t x, double t) {
  const double a = std::exp(-1.0 / t);
  return (1 - a) / (1 + a) * std::pow(a, static_cast<double>(std::llabs(x)));
}
double DiscreteLaplaceVariance(double t) {
  const double a = std::exp(-1.0 / t);
  return 2 * a / ((1 - a) * (1 - a));
}

TEST(DifferentialPrivacy, DiscreteLaplaceDrawsFollowTheTwoSidedGeometricLaw) {
  SeededNoiseSource noise(20240611);
  const NoiseScale scale{5, 2};  // t = 2.5
  const int n = 200000;
  std::map<int64_t, int> seen;
  std::vector<double> x;
  for (int k = 0; k < n; ++k) {
    const int64_t v = SampleDiscreteLaplace(scale, noise);
    ++seen[v];
    x.push_back(static_cast<double>(v));
  }
  const Moments m = MomentsOf(x);
  const double variance = DiscreteLaplaceVariance(2.5);
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(variance / n));
  EXPECT_NEAR(m.variance, variance, 0.03 * variance);
  // Every value from -6 to 6 within 5 standard errors of its probability (and so both signs,
  // and zero counted once, not twice).
  for (int64_t v = -6; v <= 6; ++v) {
    const double p = DiscreteLaplacePmf(v, 2.5);
    EXPECT_NEAR(seen[v] / static_cast<double>(n), p, 5 * std::sqrt(p * (1 - p) / n)) << v;
  }
}

TEST(DifferentialPrivacy, UniformIntegersAreUniformAndTheSecureSourceVaries) {
  SeededNoiseSource noise(1);
  EXPECT_EQ(noise.UniformBelow(1), 0u);
  // n = 3 does not divide 2^64: the rejection keeps the three residues equally likely.
  int counts[3] = {0, 0, 0};
  const int n = 90000;
  for (int k = 0; k < n; ++k) ++counts[noise.UniformBelow(3)];
  for (int c : counts) EXPECT_NEAR(c, n / 3, 5 * std::sqrt(n * (1.0 / 3) * (2.0 / 3)));
  auto secure = MakeSecureNoiseSource();
  std::set<uint64_t> values;
  for (int k = 0; k < 1000; ++k) values.insert(secure->Bits64());
  EXPECT_EQ(values.size(), 1000u);  // not a constant or a short cycle
}

TEST(DifferentialPrivacy, ScaleIsTheAddRemoveSensitivityOverEpsilonAsAnExactFraction) {
  // c_g + 3 floor(c_i / 2): 10 + 15.
  EXPECT_DOUBLE_EQ(HistogramNoiseScale({10, 10}, 1.0).value(), 25.0);
  EXPECT_DOUBLE_EQ(HistogramNoiseScale({1, 1}, 0.5).value(), 2.0);
  EXPECT_DOUBLE_EQ(HistogramNoiseScale({3, 64}, 1.0).value(), 99.0);
  const NoiseScale third = HistogramNoiseScale({5, 5}, 0.3);  // 11 / 0.3 = 110 / 3
  EXPECT_EQ(third.numerator, 110u);
  EXPECT_EQ(third.denominator, 3u);
  EXPECT_DOUBLE_EQ(FailureRateNoiseScale(0.1).value(), 1000.0);
}

// Histogram counts of 1000 everywhere (so the consistency step never changes them): the noise
// added to every bin of both histograms over many seeded releases must be discrete Laplace of
// scale (c_g + 3 floor(c_i / 2)) / epsilon, and every count a whole number.
TEST(DifferentialPrivacy, HistogramNoiseMatchesCalibrationOverManyDraws) {
  const int c = 2;
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
    const NoisyHistograms noisy = AddDiscreteLaplaceNoise(*bounded, epsilon, noise);
    EXPECT_DOUBLE_EQ(noisy.scale.value(), 5.0);
    for (int bin = 0; bin < metrics::kScoreBinCount; ++bin) {
      ASSERT_EQ(noisy.genuine.count(bin), std::floor(noisy.genuine.count(bin)));
      deltas.push_back(noisy.genuine.count(bin) - 1000.0);
      deltas.push_back(noisy.impostor.count(bin) - 1000.0);
    }
  }
  const double variance = DiscreteLaplaceVariance(5.0);
  const Moments m = MomentsOf(deltas);
  const double n = static_cast<double>(deltas.size());  // 20100
  EXPECT_NEAR(m.mean, 0.0, 5 * std::sqrt(variance / n));
  EXPECT_NEAR(m.variance, variance, 0.08 * variance);  // relative s.d. ~1.6%
}

// Layout 2: each side its own share of epsilon and its own sensitivity; raw, unclamped counts.
TEST(DifferentialPrivacy, LayoutV2NoiseSplitsEpsilonAndCalibratesEachSide) {
  const LayoutV2Noise n = LayoutV2NoiseFor({10, 64}, 1.0, 0.8);
  EXPECT_DOUBLE_EQ(n.genuine_epsilon + n.impostor_epsilon, 1.0);
  EXPECT_DOUBLE_EQ(n.impostor_epsilon, 0.8);
  EXPECT_DOUBLE_EQ(n.genuine_scale.value(), 50.0);    // c_g / 0.2
  EXPECT_DOUBLE_EQ(n.impostor_scale.value(), 120.0);  // 3 * 32 / 0.8
  const std::vector<double> zeros(metrics::kLayoutV2Bins, 0.0);
  SeededNoiseSource noise(5);
  std::vector<double> deltas;
  bool negative = false;
  for (int draw = 0; draw < 400; ++draw) {
    const PrivateHistograms p = AddLayoutV2Noise(zeros, zeros, {10, 64}, 1.0, 0.8, noise);
    ASSERT_EQ(p.genuine.size(), zeros.size());
    for (double v : p.impostor) {
      ASSERT_EQ(v, std::floor(v));
      negative = negative || v < 0;
      deltas.push_back(v);
    }
  }
  EXPECT_TRUE(negative);  // not clamped
  const Moments m = MomentsOf(deltas);
  EXPECT_NEAR(m.variance, DiscreteLaplaceVariance(120.0), 0.1 * DiscreteLaplaceVariance(120.0));
}

TEST(DifferentialPrivacy, ConsistencyMakesCumulativeCountsMonotoneWholeNumbers) {
  // Cumulative {1, -1, 2}: the first two pool to 0, so the counts become {0, 0, 2}.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{1, -2, 3}), (std::vector<double>{0, 0, 2}));
  // Already consistent whole numbers: unchanged.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{5, 0, 7}), (std::vector<double>{5, 0, 7}));
  // Negative total: nothing.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{-1, -1}), (std::vector<double>{0, 0}));
  // Cumulative {4, 1, 3, 6}: {4, 1} pool to 2.5, rounded to 3; then 3 and 6.
  EXPECT_EQ(ConsistentCounts(std::vector<double>{4, -3, 2, 3}), (std::vector<double>{3, 0, 0, 3}));
}

TEST(DifferentialPrivacy, NoisyCountsAreNeverNegative) {
  std::vector<AttributedScore> one = {{1, 1, 0.3}};
  absl::StatusOr<ContributionBoundedHistograms> bounded =
      ContributionBoundedHistograms::Build(1, one, one);
  ASSERT_TRUE(bounded.ok());
  SeededNoiseSource noise(5);
  const NoisyHistograms noisy = AddDiscreteLaplaceNoise(*bounded, 0.5, noise);
  int zeros = 0;
  for (double v : noisy.impostor.counts()) {
    EXPECT_GE(v, 0.0);
    EXPECT_EQ(v, std::floor(v));
    zeros += v == 0.0;
  }
  EXPECT_GT(zeros, 50);  // the consistency step leaves most empty bins empty
}

// One subject moves the sum of hundredths by at most 100, whatever its images: the sensitivity
// the failure-rate noise is scaled for.
TEST(DifferentialPrivacy, FailureRateSumMovesAtMostOneHundredPerSubject) {
  SubjectFailureRates base;
  for (int k = 0; k < 30; ++k) base.Add(4, k % 4 == 0 ? 1 : 0);
  EXPECT_EQ(base.subjects(), 30);
  EXPECT_EQ(base.hundredths_sum(), 8 * 25);
  SubjectFailureRates none, one_in_three, all;
  none.Add(0, 0);  // no attempt: not counted
  EXPECT_EQ(none.subjects(), 0);
  one_in_three.Add(3, 1);
  EXPECT_EQ(one_in_three.hundredths_sum(), 33);
  all.Add(1000, 1000);  // a subject with many failed images still counts 100
  EXPECT_EQ(all.hundredths_sum(), 100);
  // The noisy mean over many seeded draws: unbiased (away from the clamps) and of the stated
  // standard deviation.
  SubjectFailureRates mid;
  for (int k = 0; k < 1000; ++k) mid.Add(2, 1);  // 50 hundredths each: mean 0.5
  SeededNoiseSource noise(3);
  std::vector<double> draws;
  for (int k = 0; k < 4000; ++k) draws.push_back(NoisyMeanFailureRate(mid, 0.1, noise));
  const Moments m = MomentsOf(draws);
  const double sd = FailureRateNoiseSd(1000, 0.1);  // sqrt(2) / 100
  EXPECT_NEAR(m.mean, 0.5, 5 * sd / std::sqrt(4000.0) + 0.005);
  EXPECT_NEAR(std::sqrt(m.variance), sd, 0.15 * sd);
  for (double d : draws) EXPECT_EQ(d, std::round(d * 100) / 100);
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
  const int c = 4;  // two ring neighbours each side
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
  // Subjects with >= 4 images (5 of every 9) each get exactly c mated pairs.
  EXPECT_GE(plan.mated.size(), static_cast<size_t>(c * 60 * 5 / 9 - c));
  // Most ring pairs are used (60 subjects x 2 neighbours): those where both sides have images.
  EXPECT_GT(plan.non_mated.size(), 80u);
  EXPECT_LE(plan.non_mated.size(), 120u);
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
