// Distance histograms over the fixed fedface bin edges, and the verification metrics derived
// from histograms alone. The vendor pools partners' histograms (adds them bin by bin) and
// calibrates thresholds from the pooled result; partners may release noisy (differentially
// private) histograms, so counts are doubles and negative noisy counts are clamped to 0.
//
// Bins: bin k (0 <= k < kScoreRegularBins) holds distances in [k/100, (k+1)/100); the last bin
// (the overflow bin, index kScoreRegularBins) holds [2.0, +inf). Negative distances (which a
// Euclidean distance cannot be) fall into bin 0.
// Decision rule for histograms: a bin counts as a match at threshold t when its centre <= t
// (the overflow bin's centre is taken as +inf). At a bin edge e_k this means "bins below k",
// which is what the exact rule (distance <= t) gives for distances inside those bins.
//
// Thread safety: ScoreHistogram is a value type; const methods may be called concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/verification_metrics.h"

namespace fedface::metrics {

// The edges everyone shares. Changing them changes kScoreBinEdgesVersion, which every release
// carries, so that the vendor never adds histograms made over different edges.
inline constexpr int kScoreBinEdgesVersion = 1;
inline constexpr int kScoreRegularBins = 200;  // [0.00, 2.00) in 0.01 steps
inline constexpr double kScoreBinWidth = 0.01;
inline constexpr int kScoreBinCount = kScoreRegularBins + 1;  // plus the overflow bin

// kScoreBinEdges[k] = k/100 for k = 0..200 (each the double nearest to the decimal value, the
// same as writing the literal 0.29). Bin k is [kScoreBinEdges[k], kScoreBinEdges[k+1]).
inline constexpr std::array<double, kScoreRegularBins + 1> kScoreBinEdges = [] {
  std::array<double, kScoreRegularBins + 1> edges{};
  for (int k = 0; k <= kScoreRegularBins; ++k) edges[k] = static_cast<double>(k) / 100.0;
  return edges;
}();

// Index of the bin that holds `distance`. REQUIRES distance is not NaN.
int ScoreBinIndex(double distance);

// Representative value of bin k: its centre, +inf for the overflow bin.
double ScoreBinCentre(int bin);

class ScoreHistogram {
 public:
  ScoreHistogram();  // kScoreBinCount bins, all zero

  // From counts as released (possibly noisy): fails unless counts.size() == kScoreBinCount
  // and every count is finite; negative counts become 0.
  static absl::StatusOr<ScoreHistogram> FromCounts(std::span<const double> counts);
  // One count per distance. Fails (naming the index) on a NaN distance.
  static absl::StatusOr<ScoreHistogram> FromDistances(std::span<const double> distances);

  // Adds `weight` to the bin of `distance`. REQUIRES distance not NaN, weight finite.
  void Add(double distance, double weight = 1.0);
  // Pools another histogram bin by bin (same fixed edges by construction).
  ScoreHistogram& operator+=(const ScoreHistogram& other);

  double count(int bin) const { return counts_[static_cast<std::size_t>(bin)]; }
  const std::vector<double>& counts() const { return counts_; }
  double total() const;

 private:
  std::vector<double> counts_;
};

ScoreHistogram operator+(ScoreHistogram a, const ScoreHistogram& b);

// The same metrics as verification_metrics.h, from histograms only (mated = genuine histogram,
// non-mated = impostor histogram). A side whose total is 0 counts as empty.
ErrorRates ErrorRatesAt(const ScoreHistogram& mated, const ScoreHistogram& non_mated,
                        double threshold);
std::optional<double> RocAuc(const ScoreHistogram& mated, const ScoreHistogram& non_mated);
std::optional<EqualErrorRate> Eer(const ScoreHistogram& mated, const ScoreHistogram& non_mated);

// FNMR at a target FMR with the threshold at a bin edge: the largest edge e_k whose FMR (share
// of non-mated mass in bins below k) is <= target. Insufficient when the non-mated total is
// below MinimumTrialsFor(target). REQUIRES 0 < target_fmr < 1.
FnmrAtFmr ComputeFnmrAtFmr(const ScoreHistogram& mated, const ScoreHistogram& non_mated,
                           double target_fmr);

// The threshold to deploy for a target FMR, from the (pooled) impostor histogram alone: the
// largest bin edge whose FMR <= target. availability is kAvailable or kInsufficientNonMated.
struct RecommendedThreshold {
  double target_fmr = 0;
  Availability availability = Availability::kInsufficientNonMated;
  std::optional<double> threshold;
  std::optional<double> fmr;  // FMR the histogram predicts at that threshold
};
RecommendedThreshold RecommendThreshold(const ScoreHistogram& non_mated, double target_fmr);

}  // namespace fedface::metrics
