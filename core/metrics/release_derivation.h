// From released (noisy) histogram counts to verification metrics: ONE function used by the
// coordinator (pooled_metrics), the partner's own display and the privacy-utility bench.
//
// Bin layouts are constants of their version (never derived from partner data):
//   version 1: 200 bins of 0.01 over [0, 2) plus the overflow bin [2, +inf) (score_histogram.h);
//   version 2: bin 0 = (-inf, 0.45), 19 equal bins over [0.45, 0.79), bin 20 = [0.79, +inf).
// Knots: cumulative count k (the mass of bins 0..k-1) sits at knot k. The open ends are closed
// nominally for interpolation: the lowest knot is 0 (a distance is never negative) and the
// highest is 2.0 for version 2 (2.01 for version 1).
//
// Derivation (all post-processing of the noisy counts, free under differential privacy):
//   1. ConsistentCounts on each side (isotonic least-squares fit of the cumulative counts, Hay et
//      al. 2010): non-negative integer counts, no positive bias in empty bins;
//   2. each side's CDF is linear between knots (or, for a bracket, all of a bin's mass at one of
//      its edges: the largest / smallest CDF the counts allow);
//   3. FNMR @ FMR: the largest threshold whose interpolated FMR <= target, then the interpolated
//      FNMR there; EER where FNMR and FMR cross; ROC AUC = P(genuine < impostor).
// Withheld rule (public values only: the layout, the noise scales and the released totals): a
// figure is withheld as too noisy when the standard deviation the noise alone gives it exceeds
// its limit: for FNMR @ FMR target f, the FMR's noise s.d. at the chosen threshold > f / 3, or
// the FNMR's > kTooNoisyRateSd; for EER and ROC AUC, the FMR's or FNMR's noise s.d. at the EER
// threshold > kTooNoisyRateSd.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::metrics {

// ---- Bin layout version 2 ----
inline constexpr int kBinLayoutV2 = 2;
inline constexpr double kLayoutV2Low = 0.45;
inline constexpr double kLayoutV2High = 0.79;
inline constexpr int kLayoutV2InnerBins = 19;
inline constexpr int kLayoutV2Bins = kLayoutV2InnerBins + 2;  // 21: plus the two open ends
inline constexpr double kLayoutV2Top = 2.0;                   // nominal upper knot
// The 20 inner edges 0.45 + 0.34 k / 19, k = 0..19 (bin k + 1 is [edge k, edge k + 1)).
inline constexpr std::array<double, kLayoutV2InnerBins + 1> kLayoutV2Edges = [] {
  std::array<double, kLayoutV2InnerBins + 1> edges{};
  for (int k = 0; k <= kLayoutV2InnerBins; ++k) {
    edges[k] = kLayoutV2Low + (kLayoutV2High - kLayoutV2Low) * k / kLayoutV2InnerBins;
  }
  return edges;
}();

// A layout by version: its bin count and its bins + 1 knots (see above).
struct BinLayout {
  int version = 0;
  int bins = 0;
  std::vector<double> knots;
};
// NotFound naming the version for an unknown one. Versions 1 and 2.
absl::StatusOr<BinLayout> LayoutOf(int version);
// Index of the layout-2 bin holding `distance`. REQUIRES distance not NaN.
int LayoutV2BinIndex(double distance);

// ---- The consistency step ----
// The closest nondecreasing cumulative sequence to the noisy one (least squares,
// pool-adjacent-violators), clamped to [0, total], rounded and differenced: non-negative integer
// counts. Already-consistent integer counts are returned unchanged.
std::vector<double> ConsistentCounts(std::span<const double> noisy);

// ---- Public noise of a (pooled) release ----
// Each pooled partner adds discrete Laplace noise of a public scale to every bin of a side;
// scales[p] is partner p's scale (0 = no noise, e.g. a release without differential privacy).
struct SideNoise {
  std::vector<double> scales;
  // Variance of the summed noise in one bin: sum over partners of the discrete Laplace variance
  // 2 e^(-1/t) / (1 - e^(-1/t))^2.
  double BinVariance() const;
};
struct PublicNoise {
  SideNoise genuine;
  SideNoise impostor;
};

// How a side's CDF is read between knots.
enum class CdfReading {
  kInterpolate,      // linear between knots (the released estimate)
  kMassAtLeftEdge,   // each bin's mass at its lower knot (largest CDF the counts allow)
  kMassAtRightEdge,  // each bin's mass at its upper knot (smallest CDF)
};

enum class Withheld {
  kNone,
  kNoMated,               // no genuine mass
  kInsufficientNonMated,  // impostor total below MinimumTrialsFor(target) (or empty)
  kTooNoisy,              // the public noise s.d. exceeds the figure's limit (rule above)
};

inline constexpr double kTooNoisyRateSd = 0.02;
inline constexpr double kTooNoisyFmrShareOfTarget = 1.0 / 3.0;
inline constexpr std::array<double, 3> kDerivedFmrTargets = {1e-2, 1e-3, 1e-4};

struct DerivedRate {
  Withheld withheld = Withheld::kNone;
  std::optional<double> value;      // set iff withheld == kNone
  std::optional<double> threshold;  // EER and FNMR @ FMR: the distance threshold
  std::optional<double> achieved;   // FNMR @ FMR: the interpolated FMR at the threshold
  double noise_sd = 0;              // the noise-only s.d. used by the withheld rule
};

struct DerivedMetrics {
  int layout_version = 0;
  std::vector<double> genuine;  // consistent counts
  std::vector<double> impostor;
  double genuine_total = 0;
  double impostor_total = 0;
  std::array<DerivedRate, 3> fnmr_at_fmr;  // targets kDerivedFmrTargets
  DerivedRate eer;
  DerivedRate roc_auc;
};

// The verification metrics of (pooled) released counts. `genuine_noisy` and `impostor_noisy`
// are the released counts (summed over partners when pooled; may be negative), each exactly
// LayoutOf(layout_version)->bins long. InvalidArgument (naming the side) on a wrong length or a
// non-finite count; NotFound on an unknown layout version. With both readings kInterpolate the
// result is the released estimate; the brackets give the bin-edge bounds an interval needs.
absl::StatusOr<DerivedMetrics> DeriveVerificationMetrics(
    int layout_version, std::span<const double> genuine_noisy,
    std::span<const double> impostor_noisy, const PublicNoise& noise,
    CdfReading genuine_reading = CdfReading::kInterpolate,
    CdfReading impostor_reading = CdfReading::kInterpolate);

// The share of a side's consistent counts at or below distance t, read as `reading`.
double SideCdf(const BinLayout& layout, std::span<const double> counts, double total, double t,
               CdfReading reading);

}  // namespace fedface::metrics
