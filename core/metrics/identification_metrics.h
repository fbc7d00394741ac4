// 1:N identification metrics (NIST FRTE 1:N / ISO/IEC 19795-1 names), over DISTANCES.
//
// A mated search is a probe whose subject is enrolled in the gallery; a non-mated search is a
// probe whose subject is not. For a threshold t (a candidate is returned when distance <= t):
//   FPIR(t) = share of non-mated searches whose best candidate has distance <= t
//   FNIR(t) = share of mated searches whose true mate is not among the first `max_rank`
//             candidates with distance <= t
//   rank-1 identification rate = share of mated searches whose true mate is ranked first
//             (no threshold).
// Pure functions; thread-compatible.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/score_histogram.h"
#include "core/metrics/verification_metrics.h"

namespace fedface::metrics {

inline constexpr std::array<double, 2> kStandardFpirTargets = {1e-2, 1e-1};

struct MatedSearch {
  // 1-based rank of the true mate in the candidate list; nullopt when it was not returned.
  std::optional<int> mate_rank;
  // Distance between the probe and its mate; meaningful only when mate_rank is set.
  double mate_distance = 0;
};

struct NonMatedSearch {
  // Distance of the best (closest) candidate; nullopt when the search returned no candidate.
  std::optional<double> best_distance;
};

// FNIR at a target FPIR. The threshold is the largest threshold whose FPIR <= target (the
// largest double below the (m+1)-th smallest non-mated best distance, m = floor(target * N)).
// Unavailable with fewer than MinimumTrialsFor(target) non-mated searches, or no mated ones.
struct FnirAtFpir {
  double target_fpir = 0;
  Availability availability = Availability::kNoMated;
  std::size_t non_mated_needed = 0;
  std::optional<double> threshold;  // set iff kAvailable
  std::optional<double> fpir;       // achieved FPIR (<= target)
  std::optional<double> fnir;
};

struct IdentificationReport {
  std::size_t mated_count = 0;
  std::size_t non_mated_count = 0;
  std::optional<double> rank1_rate;  // nullopt without mated searches
  std::vector<FnirAtFpir> fnir_at_fpir;
};

// Fails (InvalidArgument, naming the search) on a rank < 1 or a non-finite distance.
// REQUIRES every target in (0, 1) and max_rank >= 1.
absl::StatusOr<IdentificationReport> ComputeIdentificationReport(
    std::span<const MatedSearch> mated, std::span<const NonMatedSearch> non_mated,
    std::span<const double> fpir_targets = kStandardFpirTargets, int max_rank = 1);

// Histogram form of a 1:N run, for pooling and for releases. The genuine histogram gets, per
// mated search, the mate's distance when the mate is at rank 1 and +inf (the overflow bin)
// otherwise; the impostor histogram gets each non-mated search's best distance, +inf when no
// candidate was returned. Then FNIR(t) at rank 1 = genuine mass above t, FPIR(t) = impostor mass
// at or below t, so ComputeFnmrAtFmr(genuine, impostor, target) is FNIR at FPIR = target.
// (A rank-1 mate at distance >= 2.0 counts as a miss: such distances do not occur with the
// fedface model's embeddings.)
ScoreHistogram Rank1MateHistogram(std::span<const MatedSearch> mated);
ScoreHistogram BestCandidateHistogram(std::span<const NonMatedSearch> non_mated);
// Rank-1 identification rate from Rank1MateHistogram: 1 - overflow share; nullopt when empty.
std::optional<double> Rank1RateFromHistogram(const ScoreHistogram& rank1_mates);

}  // namespace fedface::metrics
