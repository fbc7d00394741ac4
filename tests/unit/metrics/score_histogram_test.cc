// Histogram metrics: hand-worked examples, noisy counts, and agreement with the exact metrics
// when every distance lies on a bin centre.
#include "core/metrics/score_histogram.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace fedface::metrics {
namespace {

ScoreHistogram Hist(std::initializer_list<std::pair<int, double>> bins) {
  ScoreHistogram h;
  for (const auto& [bin, count] : bins) h.Add(ScoreBinCentre(bin), count);
  return h;
}

// Noisy releases carry fractional counts; rounding must never push a rate outside [0, 1]
// (the vendor rejects such a release as malformed). Seen in the demo: AUC 1 + 2e-16.
TEST(ScoreHistogram, RatesFromFractionalCountsStayWithinZeroAndOne) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> mass(0.0, 3.0);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<double> g(kScoreBinCount, 0.0), i(kScoreBinCount, 0.0);
    for (int k = 5; k < 40; ++k) g[k] = mass(rng);
    for (int k = 60; k < 120; ++k) i[k] = mass(rng);
    auto mated = ScoreHistogram::FromCounts(g);
    auto non_mated = ScoreHistogram::FromCounts(i);
    ASSERT_TRUE(mated.ok() && non_mated.ok());
    const std::optional<double> auc = RocAuc(*mated, *non_mated);
    ASSERT_TRUE(auc.has_value());
    EXPECT_LE(*auc, 1.0) << "trial " << trial;
    EXPECT_GE(*auc, 0.0) << "trial " << trial;
    const ErrorRates r = ErrorRatesAt(*mated, *non_mated, 0.5);
    EXPECT_LE(*r.fnmr, 1.0);
    EXPECT_GE(*r.fnmr, 0.0);
  }
}

TEST(ScoreHistogram, FixedEdgesAreHundredthsWithOverflow) {
  EXPECT_EQ(kScoreBinCount, 201);
  EXPECT_EQ(kScoreBinEdges.size(), 201u);
  EXPECT_EQ(kScoreBinEdges[0], 0.0);
  EXPECT_EQ(kScoreBinEdges[29], 0.29);
  EXPECT_EQ(kScoreBinEdges[60], 0.6);
  EXPECT_EQ(kScoreBinEdges[200], 2.0);
}

TEST(ScoreHistogram, BinIndexFollowsHalfOpenBins) {
  EXPECT_EQ(ScoreBinIndex(-1.0), 0);
  EXPECT_EQ(ScoreBinIndex(0.0), 0);
  EXPECT_EQ(ScoreBinIndex(0.0099), 0);
  EXPECT_EQ(ScoreBinIndex(0.01), 1);
  EXPECT_EQ(ScoreBinIndex(0.29), 29);  // 0.29 / 0.01 is 28.999..., the edge table is exact
  EXPECT_EQ(ScoreBinIndex(0.6), 60);
  EXPECT_EQ(ScoreBinIndex(std::nextafter(0.6, 0.0)), 59);
  EXPECT_EQ(ScoreBinIndex(1.999), 199);
  EXPECT_EQ(ScoreBinIndex(2.0), 200);
  EXPECT_EQ(ScoreBinIndex(7.5), 200);
  for (int k = 0; k < kScoreBinCount; ++k) EXPECT_EQ(ScoreBinIndex(ScoreBinCentre(k)), k);
}

TEST(ScoreHistogram, FromCountsChecksLengthAndClampsNegatives) {
  std::vector<double> counts(kScoreBinCount, 0.0);
  counts[3] = -2.5;
  counts[4] = 1.25;
  absl::StatusOr<ScoreHistogram> h = ScoreHistogram::FromCounts(counts);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->count(3), 0.0);
  EXPECT_EQ(h->count(4), 1.25);
  EXPECT_EQ(h->total(), 1.25);

  counts.pop_back();
  EXPECT_FALSE(ScoreHistogram::FromCounts(counts).ok());
  counts.push_back(NAN);
  EXPECT_FALSE(ScoreHistogram::FromCounts(counts).ok());
  const std::vector<double> nan_distance = {0.3, NAN};
  EXPECT_FALSE(ScoreHistogram::FromDistances(nan_distance).ok());
}

TEST(ScoreHistogram, PoolingAddsBinByBin) {
  const ScoreHistogram a = Hist({{30, 2}, {70, 1}});
  const ScoreHistogram b = Hist({{30, 1}, {90, 4}});
  const ScoreHistogram pooled = a + b;
  EXPECT_EQ(pooled.count(30), 3);
  EXPECT_EQ(pooled.count(70), 1);
  EXPECT_EQ(pooled.count(90), 4);
  EXPECT_EQ(pooled.total(), 8);
}

TEST(ScoreHistogram, PerfectSeparationFromHistograms) {
  const ScoreHistogram g = Hist({{30, 2}});
  const ScoreHistogram i = Hist({{70, 2}});
  EXPECT_DOUBLE_EQ(*RocAuc(g, i), 1.0);
  const auto eer = Eer(g, i);
  ASSERT_TRUE(eer.has_value());
  EXPECT_DOUBLE_EQ(eer->eer, 0.0);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.31);  // the first edge where nothing is misjudged
  const ErrorRates r = ErrorRatesAt(g, i, 0.6);
  EXPECT_DOUBLE_EQ(*r.fmr, 0.0);
  EXPECT_DOUBLE_EQ(*r.fnmr, 0.0);
}

TEST(ScoreHistogram, NoisyNonIntegerCountsWork) {
  std::vector<double> gc(kScoreBinCount, -0.2), ic(kScoreBinCount, -0.2);
  gc[30] = 1.5;
  ic[30] = 0.5;
  ic[70] = 2.5;
  const ScoreHistogram g = *ScoreHistogram::FromCounts(gc);
  const ScoreHistogram i = *ScoreHistogram::FromCounts(ic);
  // 1.5 mated in bin 30 beat 2.5 non-mated in bin 70 and tie with 0.5 in bin 30.
  EXPECT_DOUBLE_EQ(*RocAuc(g, i), 1.5 * (2.5 + 0.5 * 0.5) / (1.5 * 3.0));
  const ErrorRates r = ErrorRatesAt(g, i, 0.6);
  EXPECT_DOUBLE_EQ(*r.fmr, 0.5 / 3.0);
  EXPECT_DOUBLE_EQ(*r.fnmr, 0.0);
  EXPECT_FALSE(RocAuc(ScoreHistogram(), i).has_value());
  EXPECT_FALSE(Eer(g, ScoreHistogram()).has_value());
}

TEST(ScoreHistogram, RecommendedThresholdIsLargestEdgeWithinTarget) {
  // 300 non-mated: 2 in [0.50,0.51), 1 in [0.55,0.56), 297 in [0.90,0.91). 3 may match at 1e-2:
  // every edge up to 0.90 keeps FMR at or below 3/300.
  const ScoreHistogram i = Hist({{50, 2}, {55, 1}, {90, 297}});
  RecommendedThreshold t = RecommendThreshold(i, 1e-2);
  ASSERT_EQ(t.availability, Availability::kAvailable);
  EXPECT_DOUBLE_EQ(*t.threshold, 0.9);
  EXPECT_DOUBLE_EQ(*t.fmr, 3.0 / 300);
  // With a fourth low one, the edge must stay below bin 55.
  t = RecommendThreshold(Hist({{50, 2}, {55, 2}, {90, 296}}), 1e-2);
  EXPECT_DOUBLE_EQ(*t.threshold, 0.55);
  EXPECT_DOUBLE_EQ(*t.fmr, 2.0 / 300);
  EXPECT_EQ(RecommendThreshold(Hist({{90, 299}}), 1e-2).availability,
            Availability::kInsufficientNonMated);
  EXPECT_EQ(RecommendThreshold(i, 1e-3).availability, Availability::kInsufficientNonMated);

  const FnmrAtFmr f = ComputeFnmrAtFmr(Hist({{40, 1}, {60, 1}, {95, 2}}), i, 1e-2);
  ASSERT_TRUE(f.point.has_value());
  EXPECT_DOUBLE_EQ(f.point->threshold, 0.9);
  EXPECT_DOUBLE_EQ(f.point->fnmr, 0.5);  // the two at 0.955 do not match
}

// Distances on bin centres: histograms lose nothing, so both computations must agree.
TEST(ScoreHistogram, MetricsAgreeWithExactOnesForDistancesOnBinCentres) {
  std::mt19937_64 rng(20240611);
  std::normal_distribution<double> genuine(45, 8), impostor(85, 10);
  std::vector<double> g, i;
  auto centre_of = [](double bin) {
    return ScoreBinCentre(std::clamp(static_cast<int>(bin), 0, kScoreBinCount - 1));
  };
  for (int n = 0; n < 2000; ++n) g.push_back(centre_of(genuine(rng)));
  for (int n = 0; n < 31000; ++n) i.push_back(centre_of(impostor(rng)));
  const ScoreHistogram gh = *ScoreHistogram::FromDistances(g);
  const ScoreHistogram ih = *ScoreHistogram::FromDistances(i);
  const ComparisonScores exact = *ComparisonScores::FromDistances(g, i);

  EXPECT_NEAR(*RocAuc(gh, ih), *RocAuc(exact), 1e-12);
  const auto eh = Eer(gh, ih);
  const auto ee = Eer(exact);
  ASSERT_TRUE(eh && ee);
  EXPECT_NEAR(eh->eer, ee->eer, 1e-12);
  EXPECT_NEAR(eh->threshold, ee->threshold, kScoreBinWidth);
  EXPECT_GT(ee->eer, 0.0);  // the example must not be trivially separated

  for (double t : {0.3, 0.4537, 0.6, 0.75, 1.2}) {
    const ErrorRates a = ErrorRatesAt(gh, ih, t);
    const ErrorRates b = ErrorRatesAt(exact, t);
    EXPECT_NEAR(*a.fmr, *b.fmr, 1e-12) << t;
    EXPECT_NEAR(*a.fnmr, *b.fnmr, 1e-12) << t;
  }
  for (double target : kStandardFmrTargets) {
    const FnmrAtFmr a = ComputeFnmrAtFmr(gh, ih, target);
    const FnmrAtFmr b = ComputeFnmrAtFmr(exact, target);
    ASSERT_EQ(a.availability, Availability::kAvailable) << target;
    ASSERT_EQ(b.availability, Availability::kAvailable) << target;
    EXPECT_NEAR(a.point->fnmr, b.point->fnmr, 1e-12) << target;
    EXPECT_NEAR(a.point->fmr, b.point->fmr, 1e-12) << target;
    // The exact threshold lies inside the bin that starts at the histogram's edge.
    EXPECT_GE(b.point->threshold, a.point->threshold) << target;
    EXPECT_LT(b.point->threshold, a.point->threshold + kScoreBinWidth / 2) << target;
    EXPECT_GT(a.point->fnmr, 0.0) << target;
  }
}

}  // namespace
}  // namespace fedface::metrics
