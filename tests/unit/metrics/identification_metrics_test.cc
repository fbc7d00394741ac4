// 1:N metrics against values worked out by hand.
#include "core/metrics/identification_metrics.h"

#include <gtest/gtest.h>

#include <vector>

namespace fedface::metrics {
namespace {

// 100 non-mated searches whose best candidates lie at 0.300, 0.301, ..., 0.399.
std::vector<NonMatedSearch> HundredNonMated() {
  std::vector<NonMatedSearch> v;
  for (int k = 300; k < 400; ++k) v.push_back(NonMatedSearch{k / 1000.0});
  return v;
}

const std::vector<MatedSearch> kMated = {{1, 0.300}, {1, 0.500}, {2, 0.305}, {std::nullopt, 0}};

TEST(IdentificationMetrics, Rank1AndFnirAtFpirByHand) {
  const std::vector<double> targets = {0.01, 0.1};
  absl::StatusOr<IdentificationReport> r =
      ComputeIdentificationReport(kMated, HundredNonMated(), targets);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->mated_count, 4u);
  EXPECT_EQ(r->non_mated_count, 100u);
  EXPECT_DOUBLE_EQ(*r->rank1_rate, 0.5);
  ASSERT_EQ(r->fnir_at_fpir.size(), 2u);
  // 100 searches cannot support FPIR 0.01 (needs 300).
  EXPECT_EQ(r->fnir_at_fpir[0].availability, Availability::kInsufficientNonMated);
  EXPECT_EQ(r->fnir_at_fpir[0].non_mated_needed, 300u);
  // FPIR 0.1: 10 may be returned, so 0.310 must not: threshold just below it.
  const FnirAtFpir& f = r->fnir_at_fpir[1];
  ASSERT_EQ(f.availability, Availability::kAvailable);
  EXPECT_EQ(*f.threshold, std::nextafter(0.310, 0.0));
  EXPECT_DOUBLE_EQ(*f.fpir, 0.1);
  // Rank 1 only: (1, .300) is found; (1, .500) too far; rank 2 and not returned miss.
  EXPECT_DOUBLE_EQ(*f.fnir, 0.75);
}

TEST(IdentificationMetrics, LargerRankLimitFindsRank2Mates) {
  const std::vector<double> targets = {0.1};
  absl::StatusOr<IdentificationReport> r =
      ComputeIdentificationReport(kMated, HundredNonMated(), targets, /*max_rank=*/2);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(*r->fnir_at_fpir[0].fnir, 0.5);
}

TEST(IdentificationMetrics, NonMatedSearchesWithoutCandidatesNeverFalselyMatch) {
  std::vector<NonMatedSearch> none(40);
  const std::vector<double> targets = {0.1};
  absl::StatusOr<IdentificationReport> r = ComputeIdentificationReport(kMated, none, targets);
  ASSERT_TRUE(r.ok());
  const FnirAtFpir& f = r->fnir_at_fpir[0];
  ASSERT_EQ(f.availability, Availability::kAvailable);
  EXPECT_DOUBLE_EQ(*f.fpir, 0.0);
  EXPECT_DOUBLE_EQ(*f.threshold, 0.5);  // no need to exclude anything: the largest distance
  EXPECT_DOUBLE_EQ(*f.fnir, 0.5);       // rank-2 and not-returned mates still miss
}

TEST(IdentificationMetrics, EmptyAndInvalidInputs) {
  absl::StatusOr<IdentificationReport> r = ComputeIdentificationReport({}, HundredNonMated());
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->rank1_rate.has_value());
  EXPECT_EQ(r->fnir_at_fpir[1].availability, Availability::kNoMated);

  const std::vector<MatedSearch> bad_rank = {{0, 0.3}};
  EXPECT_FALSE(ComputeIdentificationReport(bad_rank, {}).ok());
  const std::vector<NonMatedSearch> bad_distance = {{NAN}};
  EXPECT_FALSE(ComputeIdentificationReport(kMated, bad_distance).ok());
}

}  // namespace
}  // namespace fedface::metrics

namespace fedface::metrics {
namespace {

TEST(IdentificationMetrics, HistogramFormGivesSameRank1AndFnirAtFpir) {
  // Mate distances and non-mated best distances on bin centres, so nothing is lost in binning.
  std::vector<MatedSearch> mated;
  for (int k = 0; k < 20; ++k) mated.push_back({1, ScoreBinCentre(30 + k)});
  mated.push_back({2, ScoreBinCentre(35)});
  mated.push_back({std::nullopt, 0});
  std::vector<NonMatedSearch> non_mated;
  for (int k = 0; k < 60; ++k) non_mated.push_back({ScoreBinCentre(40 + k)});
  for (int k = 0; k < 40; ++k) non_mated.push_back({std::nullopt});
  const std::vector<double> targets = {0.1};
  absl::StatusOr<IdentificationReport> exact =
      ComputeIdentificationReport(mated, non_mated, targets);
  ASSERT_TRUE(exact.ok());
  const ScoreHistogram g = Rank1MateHistogram(mated);
  const ScoreHistogram i = BestCandidateHistogram(non_mated);
  EXPECT_EQ(g.count(kScoreRegularBins), 2.0);   // rank 2 and not returned
  EXPECT_EQ(i.count(kScoreRegularBins), 40.0);  // no candidate
  EXPECT_DOUBLE_EQ(*Rank1RateFromHistogram(g), *exact->rank1_rate);
  EXPECT_DOUBLE_EQ(*Rank1RateFromHistogram(g), 20.0 / 22);
  const FnmrAtFmr h = ComputeFnmrAtFmr(g, i, 0.1);
  ASSERT_TRUE(h.point.has_value());
  EXPECT_DOUBLE_EQ(h.point->fnmr, *exact->fnir_at_fpir[0].fnir);
  EXPECT_DOUBLE_EQ(h.point->fmr, *exact->fnir_at_fpir[0].fpir);
  // 10 of 100 may be returned: best distances in bins 40..49 match, bin 50 must not.
  EXPECT_DOUBLE_EQ(h.point->threshold, 0.5);
  EXPECT_DOUBLE_EQ(h.point->fnmr, 2.0 / 22 + 0.0);  // mates in bins 30..49 are all found
}

}  // namespace
}  // namespace fedface::metrics
