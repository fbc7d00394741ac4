// 1:1 verification metrics from comparison distances, named as NIST FRTE / ISO/IEC 19795-1 do.
//
// Scores are Euclidean DISTANCES: lower means more similar, and a comparison is a match at
// threshold t when distance <= t. Mated (genuine) comparisons are two images of one subject;
// non-mated (impostor) comparisons are images of two different subjects.
//   FMR(t)  = share of non-mated comparisons with distance <= t   (false matches)
//   FNMR(t) = share of mated comparisons with distance > t        (false non-matches)
//
// Every function here is pure and thread-compatible; nothing keeps global state.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::metrics {

// The FMR targets every fedface report states (NIST FRTE's usual operating points).
inline constexpr std::array<double, 3> kStandardFmrTargets = {1e-2, 1e-3, 1e-4};

// A rate at a target rate R is statistically meaningless with fewer than 3/R trials ("rule of
// 3": zero observed errors in 3/R trials bounds the true rate at R with 95% confidence).
inline constexpr double kRuleOfThree = 3.0;

// Smallest number of trials that supports a rate of `target` (ceil(3/target), robust to
// floating error: 3/1e-3 gives 3000, not 3001). REQUIRES 0 < target < 1.
std::size_t MinimumTrialsFor(double target);

// Mated and non-mated distances, validated and sorted ascending once so that every metric
// below is O(n) or O(n log n).
class ComparisonScores {
 public:
  // Fails (InvalidArgument, naming the side and index) on a NaN or infinite distance.
  // Either side may be empty; metrics that need it then report that they are unavailable.
  static absl::StatusOr<ComparisonScores> FromDistances(std::vector<double> mated,
                                                        std::vector<double> non_mated);

  const std::vector<double>& mated() const { return mated_; }          // ascending
  const std::vector<double>& non_mated() const { return non_mated_; }  // ascending

 private:
  ComparisonScores() = default;
  std::vector<double> mated_;
  std::vector<double> non_mated_;
};

// FMR and FNMR at one threshold; a rate is nullopt when its side is empty.
struct ErrorRates {
  std::optional<double> fmr;
  std::optional<double> fnmr;
};
ErrorRates ErrorRatesAt(const ComparisonScores& scores, double threshold);

// Share of all comparisons decided correctly at `threshold` (mated <= t, non-mated > t);
// nullopt when there are no comparisons at all.
std::optional<double> AccuracyAt(const ComparisonScores& scores, double threshold);

// Probability that a random non-mated distance exceeds a random mated one, ties counting 1/2
// (the Mann-Whitney form of ROC AUC). 1 = perfect separation, 0.5 = chance. nullopt when
// either side is empty. O(n log n).
std::optional<double> RocAuc(const ComparisonScores& scores);

// One point of the ROC/DET curve: the rates when comparisons are decided at `threshold`.
struct RocPoint {
  double threshold;
  double fmr;
  double fnmr;
};

// Equal error rate: where FMR and FNMR cross, linearly interpolated along the ROC segment that
// crosses; `threshold` is interpolated the same way. When some curve point has FMR == FNMR
// exactly (e.g. perfect separation: both 0), that point is used as is.
struct EqualErrorRate {
  double eer;
  double threshold;
};

// EER from ROC points ordered by increasing threshold, the first being (FMR 0, FNMR 1)-side
// and the last (FMR 1, FNMR 0)-side. Shared by the exact and the histogram computations.
// nullopt when `points` is empty.
std::optional<EqualErrorRate> EerFromRocPoints(std::span<const RocPoint> points);

// EER over the exact distances. nullopt when either side is empty.
std::optional<EqualErrorRate> Eer(const ComparisonScores& scores);

// Why an FNMR at FMR (or FNIR at FPIR) is not given.
enum class Availability {
  kAvailable,
  kInsufficientNonMated,  // fewer than MinimumTrialsFor(target) non-mated comparisons
  kNoMated,               // FNMR is undefined without mated comparisons
};
const char* AvailabilityName(Availability a);  // e.g. "insufficient non-mated comparisons"

// FNMR at a target FMR. The threshold is the largest threshold whose FMR <= target: with
// m = floor(target * N) allowed false matches among N sorted non-mated distances i_1..i_N, that
// is the largest double below i_(m+1), so a deployment deciding `distance <= threshold` sees
// exactly `fmr` on this data. FNMR is the share of mated distances > threshold.
struct FnmrAtFmr {
  double target_fmr = 0;
  Availability availability = Availability::kNoMated;
  std::size_t non_mated_needed = 0;  // MinimumTrialsFor(target_fmr)
  // Set iff availability == kAvailable.
  std::optional<RocPoint> point;  // point->fmr is the achieved FMR (<= target)
};
// REQUIRES 0 < target_fmr < 1.
FnmrAtFmr ComputeFnmrAtFmr(const ComparisonScores& scores, double target_fmr);

// Count and order statistics of one side. Percentiles interpolate linearly between the two
// nearest order statistics (position p * (count - 1), numpy's default).
struct DistanceSummary {
  std::size_t count = 0;
  double min = 0, p5 = 0, median = 0, mean = 0, p95 = 0, max = 0;
};
// REQUIRES `sorted` ascending. nullopt when empty.
std::optional<DistanceSummary> SummarizeDistances(std::span<const double> sorted);

// Everything `partner_node evaluate` prints for a verification run.
struct VerificationReport {
  std::size_t mated_count = 0;
  std::size_t non_mated_count = 0;
  double threshold = 0;  // the operating threshold the accuracy and error rates refer to
  std::optional<double> accuracy;
  ErrorRates at_threshold;
  std::optional<EqualErrorRate> eer;
  std::optional<double> roc_auc;
  std::vector<FnmrAtFmr> fnmr_at_fmr;  // one per requested target, in the order given
  std::optional<DistanceSummary> mated_summary;
  std::optional<DistanceSummary> non_mated_summary;
};
// REQUIRES every target in (0, 1).
VerificationReport ComputeVerificationReport(
    const ComparisonScores& scores, double threshold,
    std::span<const double> fmr_targets = kStandardFmrTargets);

}  // namespace fedface::metrics
