#include "core/metrics/score_histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fedface::metrics {
namespace {

// cum[k] = mass of bins 0..k-1, for k = 0..kScoreBinCount.
std::vector<double> MassBelow(const ScoreHistogram& h) {
  std::vector<double> cum(kScoreBinCount + 1, 0.0);
  for (int k = 0; k < kScoreBinCount; ++k) cum[k + 1] = cum[k] + h.count(k);
  return cum;
}

// Threshold of the ROC point "bins below k matched", k = 0..kScoreBinCount.
double EdgeThreshold(int k) {
  if (k <= kScoreRegularBins) return kScoreBinEdges[static_cast<std::size_t>(k)];
  return kScoreBinEdges.back() + kScoreBinWidth;  // everything matched; nominal value
}

// Largest k in [0, kScoreRegularBins] with mass_below[k] <= target * total (with a relative
// tolerance so that 3 of 300 at 1e-2 counts as within target).
int LargestEdgeWithinFmr(const std::vector<double>& mass_below, double total, double target) {
  const double allowed = target * total * (1 + 1e-12);
  int best = 0;
  for (int k = 0; k <= kScoreRegularBins; ++k) {
    if (mass_below[static_cast<std::size_t>(k)] <= allowed) best = k;
  }
  return best;
}

bool Insufficient(double non_mated_total, double target) {
  return non_mated_total < static_cast<double>(MinimumTrialsFor(target));
}

}  // namespace

int ScoreBinIndex(double distance) {
  if (distance < kScoreBinEdges.front()) return 0;
  if (distance >= kScoreBinEdges.back()) return kScoreRegularBins;
  return static_cast<int>(std::upper_bound(kScoreBinEdges.begin(), kScoreBinEdges.end(), distance) -
                          kScoreBinEdges.begin()) -
         1;
}

double ScoreBinCentre(int bin) {
  if (bin >= kScoreRegularBins) return std::numeric_limits<double>::infinity();
  const auto k = static_cast<std::size_t>(bin);
  return (kScoreBinEdges[k] + kScoreBinEdges[k + 1]) / 2;
}

ScoreHistogram::ScoreHistogram() : counts_(kScoreBinCount, 0.0) {}

absl::StatusOr<ScoreHistogram> ScoreHistogram::FromCounts(std::span<const double> counts) {
  if (counts.size() != static_cast<std::size_t>(kScoreBinCount)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "score histogram: ", counts.size(), " bins given, the fixed edges have ", kScoreBinCount));
  }
  ScoreHistogram h;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    if (!std::isfinite(counts[k])) {
      return absl::InvalidArgumentError(
          absl::StrCat("score histogram: count of bin ", k, " is not finite"));
    }
    h.counts_[k] = std::max(0.0, counts[k]);
  }
  return h;
}

absl::StatusOr<ScoreHistogram> ScoreHistogram::FromDistances(std::span<const double> distances) {
  ScoreHistogram h;
  for (std::size_t i = 0; i < distances.size(); ++i) {
    if (std::isnan(distances[i])) {
      return absl::InvalidArgumentError(absl::StrCat("score histogram: distance #", i, " is NaN"));
    }
    h.Add(distances[i]);
  }
  return h;
}

void ScoreHistogram::Add(double distance, double weight) {
  counts_[static_cast<std::size_t>(ScoreBinIndex(distance))] += weight;
}

ScoreHistogram& ScoreHistogram::operator+=(const ScoreHistogram& other) {
  for (std::size_t k = 0; k < counts_.size(); ++k) counts_[k] += other.counts_[k];
  return *this;
}

ScoreHistogram operator+(ScoreHistogram a, const ScoreHistogram& b) {
  a += b;
  return a;
}

double ScoreHistogram::total() const {
  double sum = 0;
  for (double c : counts_) sum += c;
  return sum;
}

ErrorRates ErrorRatesAt(const ScoreHistogram& mated, const ScoreHistogram& non_mated,
                        double threshold) {
  double g_match = 0, i_match = 0;
  for (int k = 0; k < kScoreBinCount; ++k) {
    if (ScoreBinCentre(k) <= threshold) {
      g_match += mated.count(k);
      i_match += non_mated.count(k);
    }
  }
  ErrorRates rates;
  const double gt = mated.total(), it = non_mated.total();
  if (it > 0) rates.fmr = std::clamp(i_match / it, 0.0, 1.0);
  if (gt > 0) rates.fnmr = std::clamp((gt - g_match) / gt, 0.0, 1.0);
  return rates;
}

std::optional<double> RocAuc(const ScoreHistogram& mated, const ScoreHistogram& non_mated) {
  const double gt = mated.total(), it = non_mated.total();
  if (gt <= 0 || it <= 0) return std::nullopt;
  double above = it;  // non-mated mass in bins above the current one
  double wins = 0;
  for (int k = 0; k < kScoreBinCount; ++k) {
    above -= non_mated.count(k);
    // Distances in one bin are indistinguishable: they count as ties.
    wins += mated.count(k) * (std::max(0.0, above) + 0.5 * non_mated.count(k));
  }
  // Noisy (non-integer) counts can push the sum a rounding error past 1.
  return std::clamp(wins / (gt * it), 0.0, 1.0);
}

std::optional<EqualErrorRate> Eer(const ScoreHistogram& mated, const ScoreHistogram& non_mated) {
  const double gt = mated.total(), it = non_mated.total();
  if (gt <= 0 || it <= 0) return std::nullopt;
  const std::vector<double> g_below = MassBelow(mated);
  const std::vector<double> i_below = MassBelow(non_mated);
  std::vector<RocPoint> points;
  points.reserve(kScoreBinCount + 1);
  for (int k = 0; k <= kScoreBinCount; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    points.push_back(RocPoint{EdgeThreshold(k), i_below[kk] / it, (gt - g_below[kk]) / gt});
  }
  return EerFromRocPoints(points);
}

FnmrAtFmr ComputeFnmrAtFmr(const ScoreHistogram& mated, const ScoreHistogram& non_mated,
                           double target_fmr) {
  FnmrAtFmr out;
  out.target_fmr = target_fmr;
  out.non_mated_needed = MinimumTrialsFor(target_fmr);
  const double gt = mated.total(), it = non_mated.total();
  if (Insufficient(it, target_fmr)) {
    out.availability = Availability::kInsufficientNonMated;
    return out;
  }
  if (gt <= 0) {
    out.availability = Availability::kNoMated;
    return out;
  }
  const std::vector<double> i_below = MassBelow(non_mated);
  const std::vector<double> g_below = MassBelow(mated);
  const int k = LargestEdgeWithinFmr(i_below, it, target_fmr);
  const auto kk = static_cast<std::size_t>(k);
  out.availability = Availability::kAvailable;
  out.point = RocPoint{EdgeThreshold(k), i_below[kk] / it, (gt - g_below[kk]) / gt};
  return out;
}

RecommendedThreshold RecommendThreshold(const ScoreHistogram& non_mated, double target_fmr) {
  RecommendedThreshold out;
  out.target_fmr = target_fmr;
  const double it = non_mated.total();
  if (Insufficient(it, target_fmr)) {
    out.availability = Availability::kInsufficientNonMated;
    return out;
  }
  const std::vector<double> i_below = MassBelow(non_mated);
  const int k = LargestEdgeWithinFmr(i_below, it, target_fmr);
  out.availability = Availability::kAvailable;
  out.threshold = EdgeThreshold(k);
  out.fmr = i_below[static_cast<std::size_t>(k)] / it;
  return out;
}

}  // namespace fedface::metrics
