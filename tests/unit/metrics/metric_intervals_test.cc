// Intervals of released verification figures (metric_intervals.h): the bin-edge brackets on
// hand-worked histograms, and coverage of the non-private truth over repeated noisy samples.
#include "core/metrics/metric_intervals.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/metrics/score_histogram.h"
#include "core/metrics/verification_metrics.h"

namespace fedface::metrics {
namespace {

std::vector<double> OneBin(int bin, double count) {
  std::vector<double> counts(kScoreBinCount, 0.0);
  counts[static_cast<std::size_t>(bin)] = count;
  return counts;
}

TEST(MetricIntervals, BracketsPlaceEachBinsMassAtTheEdgeThatIsWorstOrBest) {
  const BinLayout layout = *LayoutOf(kScoreBinEdgesVersion);
  ASSERT_EQ(layout.bins, kScoreBinCount);
  // Apart: both brackets agree on perfect separation.
  const std::vector<double> targets = {1e-2};
  BracketMetrics worst =
      BracketedMetrics(layout, OneBin(40, 100), OneBin(80, 400), targets, /*worst=*/true);
  BracketMetrics best = BracketedMetrics(layout, OneBin(40, 100), OneBin(80, 400), targets, false);
  EXPECT_DOUBLE_EQ(*worst.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(*best.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(*worst.eer, 0.0);
  EXPECT_DOUBLE_EQ(*worst.fnmr_at_fmr[0], 0.0);
  // In one bin: anything from total confusion to perfect separation is possible.
  worst = BracketedMetrics(layout, OneBin(50, 100), OneBin(50, 400), targets, true);
  best = BracketedMetrics(layout, OneBin(50, 100), OneBin(50, 400), targets, false);
  EXPECT_DOUBLE_EQ(*worst.roc_auc, 0.0);
  EXPECT_DOUBLE_EQ(*best.roc_auc, 1.0);
  EXPECT_DOUBLE_EQ(*worst.fnmr_at_fmr[0], 1.0);
  EXPECT_DOUBLE_EQ(*best.fnmr_at_fmr[0], 0.0);
  // Too few impostor comparisons for the target: no figure.
  worst = BracketedMetrics(layout, OneBin(40, 100), OneBin(80, 200), targets, true);
  EXPECT_FALSE(worst.fnmr_at_fmr[0].has_value());
}

// Exact (noise-free) and noisy releases of samples from one population: the interval holds the
// population's figure in at least 90 % of 60 trials (the bench measures 95 % at scale), and
// more noise gives wider intervals.
TEST(MetricIntervals, IntervalsHoldThePopulationFigureAndWidenWithNoise) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> genuine(0.55, 0.08), impostor(0.75, 0.08);
  // The population's figures, from a very large sample.
  std::vector<double> g_all, i_all;
  for (int k = 0; k < 200000; ++k) {
    g_all.push_back(genuine(rng));
    i_all.push_back(impostor(rng));
  }
  const auto population = ComparisonScores::FromDistances(g_all, i_all);
  ASSERT_TRUE(population.ok());
  const double auc = *RocAuc(*population), eer = Eer(*population)->eer;
  const std::vector<double> targets = {1e-2};
  const double fnmr = ComputeFnmrAtFmr(*population, 1e-2).point->fnmr;
  for (const double scale : {0.0, 4.0}) {
    int covered = 0, trials = 60;
    double width = 0;
    for (int t = 0; t < trials; ++t) {
      ScoreHistogram gh, ih;
      for (int k = 0; k < 2000; ++k) gh.Add(genuine(rng));
      for (int k = 0; k < 6000; ++k) ih.Add(impostor(rng));
      ReleasedPair pair;
      pair.genuine.counts = gh.counts();
      pair.impostor.counts = ih.counts();
      if (scale > 0) {
        for (double& c : pair.genuine.counts)
          c += static_cast<double>(DrawDiscreteLaplace(scale, rng));
        for (double& c : pair.impostor.counts)
          c += static_cast<double>(DrawDiscreteLaplace(scale, rng));
        pair.genuine.counts = ConsistentCounts(pair.genuine.counts);
        pair.impostor.counts = ConsistentCounts(pair.impostor.counts);
        pair.genuine.noise_scale = scale;
        pair.impostor.noise_scale = scale;
      }
      const VerificationIntervals v =
          ComputeVerificationIntervals(*LayoutOf(kScoreBinEdgesVersion), std::span(&pair, 1),
                                       targets, Consistency::kPerRelease, rng, 100);
      ASSERT_TRUE(v.roc_auc && v.eer && v.fnmr_at_fmr[0]);
      covered +=
          v.roc_auc->Contains(auc) && v.eer->Contains(eer) && v.fnmr_at_fmr[0]->Contains(fnmr);
      width += v.eer->width() / trials;
    }
    EXPECT_GE(covered, trials * 9 / 10) << "noise scale " << scale;
    if (scale > 0) {
      EXPECT_GT(width, 0.0);
    }
    std::printf("noise scale %.0f: %d of %d intervals hold every figure; mean EER width %.4f\n",
                scale, covered, trials, width);
  }
}

}  // namespace
}  // namespace fedface::metrics
