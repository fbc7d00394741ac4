#include "core/metrics/identification_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fedface::metrics {

absl::StatusOr<IdentificationReport> ComputeIdentificationReport(
    std::span<const MatedSearch> mated, std::span<const NonMatedSearch> non_mated,
    std::span<const double> fpir_targets, int max_rank) {
  IdentificationReport r;
  r.mated_count = mated.size();
  r.non_mated_count = non_mated.size();

  // Observed maximum: the threshold to state when no candidate needs excluding.
  double largest = 0;
  std::size_t rank1 = 0;
  for (std::size_t s = 0; s < mated.size(); ++s) {
    if (!mated[s].mate_rank) continue;
    if (*mated[s].mate_rank < 1 || !std::isfinite(mated[s].mate_distance)) {
      return absl::InvalidArgumentError(
          absl::StrCat("identification: mated search #", s, " has an invalid rank or distance"));
    }
    if (*mated[s].mate_rank == 1) ++rank1;
    largest = std::max(largest, mated[s].mate_distance);
  }
  std::vector<double> best;  // non-mated best distances, ascending
  for (std::size_t s = 0; s < non_mated.size(); ++s) {
    if (!non_mated[s].best_distance) continue;
    if (!std::isfinite(*non_mated[s].best_distance)) {
      return absl::InvalidArgumentError(
          absl::StrCat("identification: non-mated search #", s, " has a non-finite distance"));
    }
    best.push_back(*non_mated[s].best_distance);
    largest = std::max(largest, *non_mated[s].best_distance);
  }
  std::sort(best.begin(), best.end());
  if (!mated.empty()) {
    r.rank1_rate = static_cast<double>(rank1) / static_cast<double>(mated.size());
  }

  const double n = static_cast<double>(non_mated.size());
  for (double target : fpir_targets) {
    FnirAtFpir f;
    f.target_fpir = target;
    f.non_mated_needed = MinimumTrialsFor(target);
    if (non_mated.size() < f.non_mated_needed) {
      f.availability = Availability::kInsufficientNonMated;
    } else if (mated.empty()) {
      f.availability = Availability::kNoMated;
    } else {
      double y = target * n;
      const double yr = std::round(y);
      const std::size_t m = static_cast<std::size_t>(
          std::fabs(y - yr) <= 1e-9 * std::max(1.0, y) ? yr : std::floor(y));
      double threshold = largest;
      std::size_t false_positives = best.size();
      if (m < best.size()) {
        threshold = std::nextafter(best[m], -std::numeric_limits<double>::infinity());
        false_positives = static_cast<std::size_t>(
            std::lower_bound(best.begin(), best.end(), best[m]) - best.begin());
      }
      std::size_t misses = 0;
      for (const MatedSearch& s : mated) {
        if (!s.mate_rank || *s.mate_rank > max_rank || s.mate_distance > threshold) ++misses;
      }
      f.availability = Availability::kAvailable;
      f.threshold = threshold;
      f.fpir = static_cast<double>(false_positives) / n;
      f.fnir = static_cast<double>(misses) / static_cast<double>(mated.size());
    }
    r.fnir_at_fpir.push_back(f);
  }
  return r;
}

ScoreHistogram Rank1MateHistogram(std::span<const MatedSearch> mated) {
  ScoreHistogram h;
  for (const MatedSearch& s : mated) {
    const bool hit = s.mate_rank && *s.mate_rank == 1 && !std::isnan(s.mate_distance);
    h.Add(hit ? s.mate_distance : std::numeric_limits<double>::infinity());
  }
  return h;
}

ScoreHistogram BestCandidateHistogram(std::span<const NonMatedSearch> non_mated) {
  ScoreHistogram h;
  for (const NonMatedSearch& s : non_mated) {
    const bool found = s.best_distance && !std::isnan(*s.best_distance);
    h.Add(found ? *s.best_distance : std::numeric_limits<double>::infinity());
  }
  return h;
}

std::optional<double> Rank1RateFromHistogram(const ScoreHistogram& rank1_mates) {
  const double total = rank1_mates.total();
  if (total <= 0) return std::nullopt;
  return 1.0 - rank1_mates.count(kScoreRegularBins) / total;
}

}  // namespace fedface::metrics
