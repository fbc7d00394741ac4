// 95 % intervals for the verification metrics derived from released (possibly noisy) score
// histograms, from PUBLIC values only: the released counts, the bin edges and each release's
// noise scale (which its epsilon and contribution bounds fix). The vendor's coordinator computes
// them for each partner's release and for the pooled result; the privacy-utility bench measures
// how often they hold the non-private truth.
//
// Method: a parametric bootstrap with bin-edge brackets. Each replicate, for every release:
//   - resamples every released count (Poisson around it: the comparisons behind a release are a
//     sample of the partner's population);
//   - adds fresh discrete Laplace noise of the release's scale to every count, as the mechanism
//     did, and makes the counts consistent (ConsistentCounts: isotonic cumulative counts);
// then pools the replicates of all releases bin by bin. A metric is computed from each pooled
// replicate twice: with every bin's mass at the edge that makes it worst (genuine at the right
// edge, impostor at the left: highest FNMR and FMR) and at the edge that makes it best. The
// interval runs from the 2.5 % quantile of the low ends to the 97.5 % quantile of the high ends.
// Re-noising alone under-covers once binning error dominates (large populations, coarse bins):
// the brackets hold every way the distances could lie inside their bins, so any derivation that
// places a bin's mass within its edges (bin-edge thresholds, interpolation) lies between them.
//
// Not covered: dependence between comparisons that share a subject (the Poisson resampling
// treats comparisons as independent), and biases common to every partner (e.g. capture
// conditions).
//
// Thread safety: pure functions; `rng` must not be shared across threads.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "core/metrics/release_derivation.h"

namespace fedface::metrics {

inline constexpr double kIntervalLevel = 0.95;
inline constexpr int kIntervalReplicates = 200;

// A figure whose 95 % interval is wider than this (in absolute rate) is presented as
// "too noisy", never as a number: the interval is computed from public values only, so the
// decision reveals nothing the release does not.
inline constexpr double kTooNoisyIntervalWidth = 0.10;

// One side (genuine or impostor) of one release.
struct ReleasedSide {
  std::vector<double> counts;  // as released, one per bin
  double noise_scale = 0;      // discrete Laplace scale on every count; 0: exact counts
};

struct ReleasedPair {
  ReleasedSide genuine;
  ReleasedSide impostor;
};

// The bins the counts are over: release_derivation.h's BinLayout (bin k holds [knots[k],
// knots[k+1]); the open ends' outer knots are nominal and never used as a distance here).

// The lower and upper end of a 95 % interval.
struct Interval {
  double low = 0;
  double high = 0;
  double width() const { return high - low; }
  bool Contains(double v) const { return low <= v && v <= high; }
};

// The verification metrics an interval is computed for.
struct VerificationIntervals {
  std::optional<Interval> roc_auc;
  std::optional<Interval> eer;
  // One per target in the order given; nullopt when the pooled impostor total of most
  // replicates is below MinimumTrialsFor(target) (the figure itself is then withheld).
  std::vector<std::optional<Interval>> fnmr_at_fmr;
};

// Metrics of one histogram pair with every bin's mass on one of its edges. worst = true: genuine
// mass at right edges, impostor at left edges (lowest AUC, highest EER and FNMR); false: the
// reverse. Exposed for tests; `fnmr_at_fmr` is one value per target (nullopt when too few
// impostor comparisons).
struct BracketMetrics {
  std::optional<double> roc_auc;
  std::optional<double> eer;
  std::vector<std::optional<double>> fnmr_at_fmr;
};
BracketMetrics BracketedMetrics(const BinLayout& layout, std::span<const double> genuine,
                                std::span<const double> impostor, std::span<const double> targets,
                                bool worst);

// One draw of discrete Laplace noise of `scale` (P(x) ~ exp(-|x|/scale) on the integers).
int64_t DrawDiscreteLaplace(double scale, std::mt19937_64& rng);

// Where the mechanism makes noisy counts consistent: each partner before releasing (bin edges
// v1: released counts are consistent, the vendor adds them), or the vendor after pooling the
// raw noisy counts (v2: released counts may be negative).
enum class Consistency { kPerRelease, kAfterPooling };

// The intervals for the pool of `releases` (one release: that partner's own figures).
// REQUIRES every side has layout.bins counts.
VerificationIntervals ComputeVerificationIntervals(const BinLayout& layout,
                                                   std::span<const ReleasedPair> releases,
                                                   std::span<const double> targets,
                                                   Consistency consistency, std::mt19937_64& rng,
                                                   int replicates = kIntervalReplicates);

}  // namespace fedface::metrics
