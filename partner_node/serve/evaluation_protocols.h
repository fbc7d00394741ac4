// The two evaluation protocols a vendor may ask for, run over a cohort on the partner's machine
// with the shared metric library (core/metrics), producing the EvaluationAggregate that the
// egress guard turns into a release. Nothing per subject or per image leaves these functions:
// only cohort counts and the two score histograms.
//
// Verification (1:1):
//   - DP off: every mated pair (two enrolled images of one subject) and every non-mated pair,
//     or exactly `non_mated_sample_size` distinct non-mated pairs drawn uniformly without
//     replacement by a generator seeded with `seed` (Floyd's algorithm over the pair index).
//   - DP on: PlanVerificationComparisons (differential_privacy.h): at most c_g mated pairs per
//     subject and the keyed hash ring's non-mated pairs (at most c_i per subject), chosen from keys
//     and the seed; the request's non-mated sample size is ignored (a cut of the plan would
//     break the add/remove sensitivity the noise is calibrated to).
// Identification (1:N, rank 1):
//   - subjects are ordered by a seeded hash of their key; the first
//     `identification_holdout_percent` (at least one, at most all but one) are left out of the
//     gallery and all their images are non-mated searches;
//   - every other subject enrols ONE image (seeded choice) into the gallery; its other images
//     are mated searches;
//   - DP on: at most c searches per subject (PlanBoundedProbes), else all of them;
//   - each search is an exact nearest-neighbour search (FAISS IndexFlatL2, all searches in one
//     batch) over the gallery; the
//     genuine histogram gets the mate's distance for rank-1 hits and +inf for misses, the
//     impostor histogram the best candidate's distance (metrics::Rank1MateHistogram,
//     BestCandidateHistogram).
// Deterministic: the same cohort, request and options give the same aggregate.
//
// Thread safety: pure functions of their inputs (the `interrupted` callback excepted).
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/serve/evaluation_cohort.h"

namespace fedface::partner {

struct ProtocolOptions {
  uint64_t seed = 0;
  uint64_t non_mated_sample_size = 0;  // 0: all non-mated pairs (verification)
  // Contribution bounding for differential privacy: 0 = off, else c (identification, and
  // verification when `verification_bounds` is unset).
  int contribution_bound = 0;
  // Verification under differential privacy (release layout 2): c_g mated and c_i impostor
  // comparisons per subject, from the partner's configuration. {0, 0}: c for both.
  VerificationBounds verification_bounds;
  int identification_holdout_percent = 30;
  // Most comparisons (or searches) per side; more is refused with FAILED_PRECONDITION.
  uint64_t max_comparisons = 20'000'000;
  // Polled every few thousand comparisons; a non-OK status (DEADLINE_EXCEEDED, CANCELLED,
  // UNAVAILABLE at shutdown) stops the run and is returned. May be empty.
  std::function<absl::Status()> interrupted;
};

// Runs the request's protocol. The aggregate's embeddings_per_second is left unset (the caller
// measures throughput). Errors: FAILED_PRECONDITION when the request is too large for
// max_comparisons, the status of `interrupted`, INTERNAL on inconsistent input. Error messages
// carry no cohort data (they may be sent to the vendor).
absl::StatusOr<EvaluationAggregate> RunEvaluationProtocol(const EvaluationCohort& cohort,
                                                          fedface::v1::EvaluationProtocol protocol,
                                                          const ProtocolOptions& options);

}  // namespace fedface::partner
