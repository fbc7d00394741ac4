// Verification metrics against values worked out by hand on small examples.
#include "core/metrics/verification_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fedface::metrics {
namespace {

ComparisonScores Scores(std::vector<double> mated, std::vector<double> non_mated) {
  absl::StatusOr<ComparisonScores> s =
      ComparisonScores::FromDistances(std::move(mated), std::move(non_mated));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

// Non-mated distances k/1000 for k in [from, to): each exactly the double of its decimal.
std::vector<double> Thousandths(int from, int to) {
  std::vector<double> v;
  for (int k = from; k < to; ++k) v.push_back(k / 1000.0);
  return v;
}

TEST(VerificationMetrics, MinimumTrialsFollowsRuleOfThree) {
  EXPECT_EQ(MinimumTrialsFor(1e-2), 300u);
  EXPECT_EQ(MinimumTrialsFor(1e-3), 3000u);
  EXPECT_EQ(MinimumTrialsFor(1e-4), 30000u);
  EXPECT_EQ(MinimumTrialsFor(0.1), 30u);
}

TEST(VerificationMetrics, RejectsNonFiniteDistances) {
  EXPECT_FALSE(ComparisonScores::FromDistances({0.1, NAN}, {}).ok());
  EXPECT_FALSE(ComparisonScores::FromDistances({}, {INFINITY}).ok());
}

TEST(VerificationMetrics, SmallInterleavedExample) {
  // Mated {0.2, 0.4}, non-mated {0.3, 0.5}. Pairs (g, i) where i > g: (.2,.3) (.2,.5) (.4,.5).
  const ComparisonScores s = Scores({0.4, 0.2}, {0.5, 0.3});
  EXPECT_DOUBLE_EQ(*RocAuc(s), 0.75);
  // At 0.3: FMR 1/2 (0.3), FNMR 1/2 (0.4): the curves meet exactly there.
  const auto eer = Eer(s);
  ASSERT_TRUE(eer.has_value());
  EXPECT_DOUBLE_EQ(eer->eer, 0.5);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.3);
  // At 0.35: 0.2 matches, 0.4 does not; 0.3 falsely matches, 0.5 does not. 2 of 4 correct.
  EXPECT_DOUBLE_EQ(*AccuracyAt(s, 0.35), 0.5);
  const ErrorRates r = ErrorRatesAt(s, 0.35);
  EXPECT_DOUBLE_EQ(*r.fmr, 0.5);
  EXPECT_DOUBLE_EQ(*r.fnmr, 0.5);
}

TEST(VerificationMetrics, DistanceEqualToThresholdIsAMatch) {
  const ComparisonScores s = Scores({0.6}, {0.6});
  EXPECT_DOUBLE_EQ(*ErrorRatesAt(s, 0.6).fnmr, 0.0);
  EXPECT_DOUBLE_EQ(*ErrorRatesAt(s, 0.6).fmr, 1.0);
  EXPECT_DOUBLE_EQ(*AccuracyAt(s, 0.6), 0.5);
}

TEST(VerificationMetrics, TiesCountHalfInAuc) {
  EXPECT_DOUBLE_EQ(*RocAuc(Scores({0.5}, {0.5})), 0.5);
  // (.3,.5) win, (.3,.7) win, (.5,.5) half, (.5,.7) win: 3.5 of 4.
  EXPECT_DOUBLE_EQ(*RocAuc(Scores({0.3, 0.5}, {0.5, 0.7})), 0.875);
  // Many ties on both sides: every pair is a tie.
  EXPECT_DOUBLE_EQ(*RocAuc(Scores({0.4, 0.4, 0.4}, {0.4, 0.4})), 0.5);
}

TEST(VerificationMetrics, PerfectSeparationGivesAucOneAndEerZero) {
  const ComparisonScores s = Scores({0.1, 0.3, 0.2}, {0.8, 0.7});
  EXPECT_DOUBLE_EQ(*RocAuc(s), 1.0);
  const auto eer = Eer(s);
  ASSERT_TRUE(eer.has_value());
  EXPECT_DOUBLE_EQ(eer->eer, 0.0);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.3);  // first threshold where both rates are 0
  EXPECT_DOUBLE_EQ(*AccuracyAt(s, 0.5), 1.0);
}

TEST(VerificationMetrics, InvertedScoresGiveAucZeroAndEerOne) {
  const ComparisonScores s = Scores({0.9}, {0.1});
  EXPECT_DOUBLE_EQ(*RocAuc(s), 0.0);
  EXPECT_DOUBLE_EQ(Eer(s)->eer, 1.0);
}

TEST(VerificationMetrics, EerInterpolatesWhenRatesNeverMeet) {
  // Mated {0.1, 0.5}, non-mated {0.3}. At 0.1: FMR 0, FNMR 1/2. At 0.3: FMR 1, FNMR 1/2.
  // Along that ROC segment FMR = FNMR at its midpoint: EER 1/2 at threshold 0.2.
  const auto eer = Eer(Scores({0.1, 0.5}, {0.3}));
  ASSERT_TRUE(eer.has_value());
  EXPECT_DOUBLE_EQ(eer->eer, 0.5);
  EXPECT_DOUBLE_EQ(eer->threshold, 0.2);
}

TEST(VerificationMetrics, EmptySidesMakeMetricsUnavailable) {
  const ComparisonScores no_mated = Scores({}, Thousandths(0, 400));
  EXPECT_FALSE(RocAuc(no_mated).has_value());
  EXPECT_FALSE(Eer(no_mated).has_value());
  EXPECT_FALSE(ErrorRatesAt(no_mated, 0.6).fnmr.has_value());
  EXPECT_DOUBLE_EQ(*ErrorRatesAt(no_mated, 0.6).fmr, 1.0);
  EXPECT_EQ(ComputeFnmrAtFmr(no_mated, 1e-2).availability, Availability::kNoMated);

  const ComparisonScores none = Scores({}, {});
  EXPECT_FALSE(AccuracyAt(none, 0.6).has_value());
  const VerificationReport r = ComputeVerificationReport(none, 0.6);
  EXPECT_EQ(r.mated_count, 0u);
  EXPECT_FALSE(r.mated_summary.has_value());
  EXPECT_FALSE(r.non_mated_summary.has_value());
  ASSERT_EQ(r.fnmr_at_fmr.size(), 3u);
  for (const FnmrAtFmr& f : r.fnmr_at_fmr) {
    EXPECT_EQ(f.availability, Availability::kInsufficientNonMated);
    EXPECT_FALSE(f.point.has_value());
  }
}

TEST(VerificationMetrics, FnmrAtFmrUsesLargestThresholdWithinTarget) {
  // 300 non-mated distances 0.500 .. 0.799: at FMR 1e-2, 3 may match, so 0.503 must not.
  const ComparisonScores s = Scores({0.4, 0.502, 0.503, 0.6}, Thousandths(500, 800));
  const FnmrAtFmr f = ComputeFnmrAtFmr(s, 1e-2);
  ASSERT_EQ(f.availability, Availability::kAvailable);
  ASSERT_TRUE(f.point.has_value());
  EXPECT_LT(f.point->threshold, 0.503);
  EXPECT_EQ(f.point->threshold, std::nextafter(0.503, 0.0));  // the largest such threshold
  EXPECT_DOUBLE_EQ(f.point->fmr, 3.0 / 300);
  EXPECT_DOUBLE_EQ(f.point->fnmr, 0.5);  // 0.503 and 0.6 do not match
  // Deciding at that threshold reproduces the stated rates exactly.
  EXPECT_DOUBLE_EQ(*ErrorRatesAt(s, f.point->threshold).fmr, f.point->fmr);
  EXPECT_DOUBLE_EQ(*ErrorRatesAt(s, f.point->threshold).fnmr, f.point->fnmr);
}

TEST(VerificationMetrics, FnmrAtFmrWithTiedNonMatedAtTheBoundary) {
  // Five non-mated at 0.3 then 295 at 0.9: any threshold >= 0.3 gives FMR 5/300 > 1e-2.
  std::vector<double> non_mated(5, 0.3);
  non_mated.insert(non_mated.end(), 295, 0.9);
  const FnmrAtFmr f = ComputeFnmrAtFmr(Scores({0.29, 0.3, 0.31}, non_mated), 1e-2);
  ASSERT_TRUE(f.point.has_value());
  EXPECT_LT(f.point->threshold, 0.3);
  EXPECT_DOUBLE_EQ(f.point->fmr, 0.0);
  EXPECT_DOUBLE_EQ(f.point->fnmr, 2.0 / 3);
}

TEST(VerificationMetrics, FnmrAtFmrInsufficientBelowThreeOverFmr) {
  const ComparisonScores s299 = Scores({0.4}, Thousandths(500, 799));
  const FnmrAtFmr f = ComputeFnmrAtFmr(s299, 1e-2);
  EXPECT_EQ(f.availability, Availability::kInsufficientNonMated);
  EXPECT_EQ(f.non_mated_needed, 300u);
  EXPECT_FALSE(f.point.has_value());
  EXPECT_STREQ(AvailabilityName(f.availability), "insufficient non-mated comparisons");

  const ComparisonScores s300 = Scores({0.4}, Thousandths(500, 800));
  EXPECT_EQ(ComputeFnmrAtFmr(s300, 1e-2).availability, Availability::kAvailable);
  EXPECT_EQ(ComputeFnmrAtFmr(s300, 1e-3).availability, Availability::kInsufficientNonMated);
  EXPECT_EQ(ComputeFnmrAtFmr(s300, 1e-3).non_mated_needed, 3000u);
}

TEST(VerificationMetrics, SummaryInterpolatesPercentiles) {
  const std::vector<double> sorted = {1, 2, 3, 4, 5};
  const auto s = SummarizeDistances(sorted);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->count, 5u);
  EXPECT_DOUBLE_EQ(s->min, 1);
  EXPECT_DOUBLE_EQ(s->p5, 1.2);  // position 0.05 * 4 = 0.2
  EXPECT_DOUBLE_EQ(s->median, 3);
  EXPECT_DOUBLE_EQ(s->mean, 3);
  EXPECT_DOUBLE_EQ(s->p95, 4.8);  // position 3.8
  EXPECT_DOUBLE_EQ(s->max, 5);
  const std::vector<double> one = {0.7};
  EXPECT_DOUBLE_EQ(SummarizeDistances(one)->p5, 0.7);
  EXPECT_DOUBLE_EQ(SummarizeDistances(one)->p95, 0.7);
}

TEST(VerificationMetrics, ReportCollectsEverything) {
  const ComparisonScores s = Scores({0.4, 0.502, 0.503, 0.6}, Thousandths(500, 800));
  const VerificationReport r = ComputeVerificationReport(s, 0.6);
  EXPECT_EQ(r.mated_count, 4u);
  EXPECT_EQ(r.non_mated_count, 300u);
  // All 4 mated match at 0.6; non-mated 0.500..0.600 (101 of them) falsely match.
  EXPECT_DOUBLE_EQ(*r.accuracy, (4.0 + 199) / 304);
  EXPECT_DOUBLE_EQ(*r.at_threshold.fmr, 101.0 / 300);
  ASSERT_EQ(r.fnmr_at_fmr.size(), 3u);
  EXPECT_EQ(r.fnmr_at_fmr[0].availability, Availability::kAvailable);
  EXPECT_EQ(r.fnmr_at_fmr[1].availability, Availability::kInsufficientNonMated);
  EXPECT_EQ(r.fnmr_at_fmr[2].availability, Availability::kInsufficientNonMated);
  EXPECT_EQ(r.mated_summary->count, 4u);
  EXPECT_DOUBLE_EQ(r.non_mated_summary->min, 0.5);
  EXPECT_DOUBLE_EQ(r.non_mated_summary->max, 0.799);
}

}  // namespace
}  // namespace fedface::metrics
