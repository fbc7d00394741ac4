// Steps 2-5 of the egress, the PURE step: the vendor's request and the partner's aggregate in,
// the exact bytes that may leave out. No budget, no ledger, no approval: nothing is charged or
// recorded here (egress_guard.h commits; a preview sends nothing).
//
//   aggregate ► 2 ApplyKMinimum          which cohorts have >= k subjects
//               3 differential privacy   noise on contribution-bounded histograms
//                                         (differential_privacy.h)
//               4 BuildRelease           typed EvaluationRelease; every metric derived from the
//                                         (noisy) histograms; withheld values carry a reason
//               5 CheckAllowlisted       default deny: message type and field shape
//                                         (release_shape.h)
//
// REQUIRES: an EvaluationAggregate (protocol, cohort subject/image counts, two score histograms
//   over the fixed bins and, when DP is on, ContributionBoundedHistograms built with the
//   configured bound c). Nothing per subject or per image enters.
// ENSURES: only fedface.v1.EvaluationRelease, serialized deterministically, that passed
//   CheckAllowlisted; counts as bands; thresholds at bin edges; rates and histograms withheld,
//   with a Suppression reason, when a cohort behind them has fewer than k subjects. With DP on,
//   every verification metric is computed from the noisy histograms.
// Thread safety: free functions; `noise` must not be used by another thread meanwhile.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/metrics/score_histogram.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/egress_config.h"

namespace fedface::partner {

// Cohort sizes behind a run (exact; only bands leave).
struct CohortCounts {
  int64_t subjects = 0;               // subjects in the run
  int64_t mated_subjects = 0;         // subjects behind the genuine side (mated pairs / searches)
  int64_t non_mated_subjects = 0;     // subjects behind the impostor side
  int64_t images = 0;                 // images attempted
  int64_t failures_to_enrol = 0;      // of those, no usable face
  int64_t mated_comparisons = 0;      // or mated searches
  int64_t non_mated_comparisons = 0;  // or non-mated searches
};

// What an evaluation job hands the guard. Identification runs fill the histograms with
// metrics::Rank1MateHistogram / BestCandidateHistogram (or the same rule through
// AttributedScore with +inf for misses).
struct EvaluationAggregate {
  fedface::v1::EvaluationProtocol protocol = fedface::v1::EVALUATION_PROTOCOL_UNSPECIFIED;
  CohortCounts cohort;
  metrics::ScoreHistogram genuine;                       // all comparisons; used when DP is off
  metrics::ScoreHistogram impostor;                      // all comparisons; used when DP is off
  std::optional<ContributionBoundedHistograms> bounded;  // required when DP is on
  SubjectFailureRates failure_rates;                     // used when DP is on
  std::optional<double> embeddings_per_second;
};

// ---- Step 2: k-minimum ------------------------------------------------------------------------

struct KMinimumDecision {
  bool cohort = false;     // subjects >= k: anything at all may be released
  bool mated = false;      // cohort && mated_subjects >= k: genuine-side values may be released
  bool non_mated = false;  // cohort && non_mated_subjects >= k: impostor-side values too
};
KMinimumDecision ApplyKMinimum(const CohortCounts& cohort, int k);

// The band [at_least, below) holding `count` on the ladder 0, 10, 20, 50, 100, 200, 500, ...
struct Band {
  uint64_t at_least = 0;
  uint64_t below = 0;
};
Band CountBandOf(int64_t count);

// ---- Release layout 2 -------------------------------------------------------------------------
// Under differential privacy a VERIFICATION release is over bin layout 2 (21 bins,
// core/metrics/release_derivation.h) with the raw noisy counts and the public noise parameters
// in PrivacyAccounting fields 4-7; identification releases and releases without differential
// privacy (local and test use only: the guard refuses to run toward a vendor without it) keep
// layout 1.

// The partner's verification bounds (c_g, c_i).
VerificationBounds VerificationBoundsOf(const DifferentialPrivacyConfig& dp);

// The epsilon spent on the failure-to-enrol rate when it is released (whole micro-epsilons).
double FailureRateEpsilon(const DifferentialPrivacyConfig& dp);

// The privacy accounting of a layout-2 release: every field follows from the partner's
// configuration and from whether the failure-to-enrol rate took its share of epsilon (which the
// release shows). The composer writes it and the shape check (release_shape.h) requires it, so
// no request can choose a bound, a split or a scale.
fedface::v1::PrivacyAccounting LayoutV2Accounting(const DifferentialPrivacyConfig& dp,
                                                  bool failure_rate_released);

// ---- Step 4: the typed release ----------------------------------------------------------------

// Builds the release from histograms (noisy ones when `noisy` is given, else the aggregate's
// exact ones) under the k-minimum decision. Pure; no budget, no ledger.
// `ledger_head` is the ledger's head before this release is recorded (the vendor's anchor).
// What differential privacy lets out of one release.
struct PrivateValues {
  NoisyHistograms histograms;  // bin layout 1 (identification)
  // Bin layout 2 (verification): the raw noisy counts and their public scales.
  std::optional<PrivateHistograms> layout_v2;
  // The noisy mean failure-to-enrol rate; nullopt when too noisy at this size or not measured.
  std::optional<double> failure_to_enrol_rate;
  double epsilon = 0;  // the whole release's: histograms plus the failure rate when released
};

// The grids released values lie on (release_shape.h checks them).
inline constexpr double kRateStep = 1e-6;         // every rate, EER, AUC, FMR, FNMR, ...
inline constexpr double kFailureRateStep = 0.01;  // the failure-to-enrol rate
inline constexpr int kThroughputSignificantDigits = 3;

// Builds the release from histograms (the noisy ones when `private_values` is given, else the
// aggregate's exact ones) under the k-minimum decision. Pure; no budget, no ledger.
// `ledger_head` is the ledger's head before this release is recorded (the vendor's anchor).
fedface::v1::EvaluationRelease BuildRelease(const fedface::v1::RunEvaluationRequest& request,
                                            const EvaluationAggregate& aggregate,
                                            const KMinimumDecision& k_minimum,
                                            const PrivateValues* private_values,
                                            const EgressGuardConfig& config,
                                            const fedface::v1::LedgerHead& ledger_head);

// ---- Steps 2-5 together -----------------------------------------------------------------------

struct ComposedRelease {
  std::string bytes;   // the exact serialized EvaluationRelease
  double epsilon = 0;  // what it costs the privacy budget (0 without differential privacy)
};

// Checks that the aggregate answers the request (FAILED_PRECONDITION otherwise) and that the
// protocol may be released (CheckProtocolAllowed), then runs steps 2-5 with `noise` and the
// ledger head the release will extend. INTERNAL when the built release fails its own shape check.
absl::StatusOr<ComposedRelease> ComposeRelease(const EgressGuardConfig& config,
                                               const fedface::v1::RunEvaluationRequest& request,
                                               const EvaluationAggregate& aggregate,
                                               NoiseSource& noise,
                                               const fedface::v1::LedgerHead& ledger_head);

// A preview (`partner_node evaluate-release`): ComposeRelease with fresh noise from the CSPRNG,
// kept nowhere. Nothing is charged, held or recorded; two previews differ in their noise, and a
// preview's noise is never that of a real release.
absl::StatusOr<std::string> PreviewRelease(const EgressGuardConfig& config,
                                           const fedface::v1::RunEvaluationRequest& request,
                                           const EvaluationAggregate& aggregate,
                                           const fedface::v1::LedgerHead& ledger_head);

}  // namespace fedface::partner
