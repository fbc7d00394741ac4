// The one derivation from released counts to metrics (coordinator, partner display, bench).
#include "core/metrics/release_derivation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace fedface::metrics {
namespace {

// Normal distances binned into layout 2 (the same model the privacy-utility bench fits).
std::vector<double> Binned(double mean, double sd, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(mean, sd);
  std::vector<double> counts(kLayoutV2Bins, 0.0);
  for (int k = 0; k < n; ++k) counts[static_cast<std::size_t>(LayoutV2BinIndex(d(rng)))] += 1;
  return counts;
}

TEST(ReleaseDerivation, LayoutsAreConstantsOfTheirVersion) {
  const absl::StatusOr<BinLayout> v2 = LayoutOf(2);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->bins, 21);
  ASSERT_EQ(v2->knots.size(), 22u);
  EXPECT_EQ(v2->knots.front(), 0.0);
  EXPECT_DOUBLE_EQ(v2->knots[1], 0.45);
  EXPECT_DOUBLE_EQ(v2->knots[20], 0.79);
  EXPECT_EQ(v2->knots.back(), 2.0);
  EXPECT_EQ(LayoutV2BinIndex(0.1), 0);
  EXPECT_EQ(LayoutV2BinIndex(0.45), 1);
  EXPECT_EQ(LayoutV2BinIndex(0.789), 19);
  EXPECT_EQ(LayoutV2BinIndex(0.79), 20);
  EXPECT_EQ(LayoutV2BinIndex(5.0), 20);
  const absl::StatusOr<BinLayout> v1 = LayoutOf(1);
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->bins, 201);
  EXPECT_EQ(LayoutOf(3).status().code(), absl::StatusCode::kNotFound);
}

TEST(ReleaseDerivation, RefusesWrongLengthsAndNonFiniteCounts) {
  const std::vector<double> ok(21, 1.0), short_side(20, 1.0);
  std::vector<double> nan = ok;
  nan[3] = NAN;
  EXPECT_EQ(DeriveVerificationMetrics(2, short_side, ok, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveVerificationMetrics(2, ok, nan, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveVerificationMetrics(7, ok, ok, {}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ReleaseDerivation, ExactCountsGiveTheModelsMetricsWithinBinningError) {
  // Genuine N(0.35, 0.08), impostor N(0.95, 0.09): AUC ~1, EER ~1e-5, FNMR@1e-3 small.
  const std::vector<double> g = Binned(0.35, 0.08, 200000, 1);
  const std::vector<double> i = Binned(0.95, 0.09, 2000000, 2);
  const absl::StatusOr<DerivedMetrics> m = DeriveVerificationMetrics(2, g, i, {});
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_TRUE(m->roc_auc.value);
  EXPECT_NEAR(*m->roc_auc.value, 1.0, 1e-3);
  ASSERT_TRUE(m->eer.value);
  EXPECT_LT(*m->eer.value, 0.005);
  for (const DerivedRate& r : m->fnmr_at_fmr) {
    ASSERT_EQ(r.withheld, Withheld::kNone);
    EXPECT_LE(*r.achieved, 1e-2 * (1 + 1e-9));
    EXPECT_GE(*r.value, 0.0);
  }
  EXPECT_LE(*m->fnmr_at_fmr[1].achieved, 1e-3 * (1 + 1e-9));
}

TEST(ReleaseDerivation, BracketsHoldTheInterpolatedEstimate) {
  const std::vector<double> g = Binned(0.55, 0.1, 20000, 3);
  const std::vector<double> i = Binned(0.75, 0.1, 200000, 4);
  auto at = [&](CdfReading rg, CdfReading ri) {
    return *DeriveVerificationMetrics(2, g, i, {}, rg, ri);
  };
  const DerivedMetrics mid = at(CdfReading::kInterpolate, CdfReading::kInterpolate);
  const DerivedMetrics pessimistic = at(CdfReading::kMassAtRightEdge, CdfReading::kMassAtLeftEdge);
  const DerivedMetrics optimistic = at(CdfReading::kMassAtLeftEdge, CdfReading::kMassAtRightEdge);
  EXPECT_LE(*pessimistic.roc_auc.value, *mid.roc_auc.value + 1e-12);
  EXPECT_GE(*optimistic.roc_auc.value, *mid.roc_auc.value - 1e-12);
  EXPECT_GE(*pessimistic.eer.value, *mid.eer.value - 1e-12);
  EXPECT_LE(*optimistic.eer.value, *mid.eer.value + 1e-12);
  EXPECT_GE(*pessimistic.fnmr_at_fmr[0].value, *mid.fnmr_at_fmr[0].value - 1e-12);
  EXPECT_LE(*optimistic.fnmr_at_fmr[0].value, *mid.fnmr_at_fmr[0].value + 1e-12);
}

TEST(ReleaseDerivation, NoisyNegativeCountsAreMadeConsistentAndTooNoisyIsWithheldFromPublicValues) {
  std::vector<double> g = Binned(0.35, 0.08, 500, 5);
  std::vector<double> i = Binned(0.95, 0.09, 4000, 6);
  g[20] = -7;  // raw noisy counts may be negative
  i[0] = -3;
  PublicNoise loud{{{50.0}}, {{120.0}}};
  const absl::StatusOr<DerivedMetrics> m = DeriveVerificationMetrics(2, g, i, loud);
  ASSERT_TRUE(m.ok());
  for (double v : m->genuine) EXPECT_GE(v, 0);
  for (double v : m->impostor) EXPECT_GE(v, 0);
  // s.d. of the FMR near the bottom: sqrt(2 * 120^2 * 1 bin) / 4000 ~ 0.04 > 1e-3 / 3.
  EXPECT_EQ(m->fnmr_at_fmr[1].withheld, Withheld::kTooNoisy);
  EXPECT_GT(m->fnmr_at_fmr[1].noise_sd, 1e-3 / 3);
  EXPECT_FALSE(m->fnmr_at_fmr[1].value);
  // Without noise the same counts are released.
  const absl::StatusOr<DerivedMetrics> quiet = DeriveVerificationMetrics(2, g, i, {});
  EXPECT_EQ(quiet->fnmr_at_fmr[1].withheld, Withheld::kNone);
  EXPECT_EQ(quiet->eer.withheld, Withheld::kNone);
  // One partner's noise of scale t in a bin: discrete Laplace variance 2 e^(-1/t) / (1 -
  // e^(-1/t))^2.
  const double a = std::exp(-1.0 / 120.0);
  const SideNoise two_partners{{120.0, 120.0}};
  EXPECT_NEAR(two_partners.BinVariance(), 4 * a / ((1 - a) * (1 - a)), 1e-6);
}

TEST(ReleaseDerivation, WithholdsWithoutMatedOrWithTooFewImpostors) {
  const std::vector<double> zero(21, 0.0), some = Binned(0.9, 0.1, 150, 7);
  const DerivedMetrics no_mated = *DeriveVerificationMetrics(2, zero, some, {});
  EXPECT_EQ(no_mated.eer.withheld, Withheld::kNoMated);
  EXPECT_EQ(no_mated.fnmr_at_fmr[0].withheld, Withheld::kNoMated);
  const DerivedMetrics few = *DeriveVerificationMetrics(2, some, some, {});
  EXPECT_EQ(few.fnmr_at_fmr[0].withheld, Withheld::kInsufficientNonMated);  // needs 300
  EXPECT_EQ(few.eer.withheld, Withheld::kNone);
}

}  // namespace
}  // namespace fedface::metrics
