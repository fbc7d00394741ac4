// The egress guard: THE ONLY code that builds messages for the vendor (DESIGN.md, boundary
// rule 2). Every byte the partner sends the vendor comes out of EgressGuard::ReleaseEvaluation
// or EgressGuard::Seal, after the steps below, each a separate function testable alone.
//
//   request ──► 1 CheckRequest          vendor's round_id / model_version / protocol are valid
//               (replay)                same vendor + round_id + request hash: stored bytes
//   aggregate ► 2 ApplyKMinimum          which cohorts have >= k subjects
//               3 differential privacy   Laplace noise on contribution-bounded histograms
//                                         (differential_privacy.h); DP off: exact histograms
//               4 BuildRelease           typed EvaluationRelease; every metric derived from the
//                                         (noisy) histograms; withheld values carry a reason
//               5 CheckAllowlisted       default deny: message type and field shape
//               6 PrivacyBudget          charge epsilon + store the exact bytes, atomically
//               7 EgressLedger::Append   the exact bytes' digest, durable before returning
//
// REQUIRES (what goes in)
//   - An EvaluationAggregate: protocol, cohort subject/image counts, two score histograms over
//     the fixed bins (all comparisons) and, when DP is on, ContributionBoundedHistograms built
//     with the configured bound c. Nothing per subject or per image enters the guard.
//   - The vendor's identity as the mTLS layer established it, and the vendor's request.
// ENSURES (what comes out)
//   - Only fedface.v1.EvaluationRelease (unless the allowlist is widened), serialized
//     deterministically, whose only strings are the vendor's own validated round_id and
//     model_version, whose only repeated fields are the two histograms of exactly
//     metrics::kScoreBinCount counts, and which has no unknown fields.
//   - Counts as bands; FNMR@FMR / FNIR@FPIR / EER thresholds at bin edges (never a distance of
//     an individual comparison); rates and histograms withheld, with a Suppression reason, when
//     a cohort behind them has fewer than k subjects or (FNMR@FMR) fewer than 3/FMR non-mated.
//   - With DP on: histograms carry Laplace noise of scale 4c/epsilon from a CSPRNG the vendor
//     cannot seed; all verification/identification metrics are computed from those noisy
//     histograms; epsilon is charged to the vendor's budget before any byte leaves.
//   - A repeated identical request returns the byte-identical stored release, charged once.
//   - Every returned byte string was appended to the ledger first.
//   - Error statuses are safe to send: codes INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
//     ALREADY_EXISTS, FAILED_PRECONDITION carry only the vendor's own values and budget numbers;
//     any failure of the partner's local stores becomes INTERNAL with a fixed message (the
//     detail goes to the partner's stderr).
// NEVER comes out: pixels, crops, landmarks, embeddings, per-image or per-comparison scores,
//   subject names, file names or paths, per-subject counts, exact counts, the noise, the
//   sampling seed's effect per subject, or any free text from partner data.
// Thread safety: an EgressGuard may be used from several threads at once (the budget and the
//   ledger serialise themselves; the noise source is guarded).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/metrics/score_histogram.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/privacy_budget.h"

namespace google::protobuf {
class Message;
}

namespace fedface::partner {

inline constexpr char kEvaluationReleaseType[] = "fedface.v1.EvaluationRelease";

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
  std::optional<double> embeddings_per_second;
};

struct DifferentialPrivacyConfig {
  bool enabled = true;
  double epsilon_per_release = 1.0;  // charged per (non-repeated) release
  int contribution_bound = 10;       // c
};

// The floor of k toward any vendor: a configuration cannot go below it.
inline constexpr int kMinimumK = 5;

struct EgressGuardConfig {
  int k_minimum = 10;  // >= kMinimumK
  DifferentialPrivacyConfig dp;
  // Message types that may leave, by full protobuf name. Default deny: nothing else.
  std::set<std::string> allowlist = {kEvaluationReleaseType};
};

// ---- Step 1: the vendor's request -------------------------------------------------------------

// round_id matches [A-Za-z0-9_-]{1,64}, model_version [0-9A-Za-z.+-]{1,64}, protocol is
// verification or identification. InvalidArgument naming the field otherwise.
absl::Status CheckRequest(const fedface::v1::RunEvaluationRequest& request);
// The vendor identity: 1..256 printable ASCII characters.
absl::Status CheckVendorIdentity(std::string_view vendor);
// sha256 hex of the request's deterministic serialization.
std::string RequestHash(const fedface::v1::RunEvaluationRequest& request);

// Identification under differential privacy: refused. One gallery subject takes part in every
// other subject's search (as a candidate), so adding or removing one person can move many
// counts of the identification histograms (a crafted "hub" embedding near everyone moves all
// non-mated best distances); the contribution bound per probe does not cover that, and a release
// must never claim a guarantee it does not give. FAILED_PRECONDITION with this text when DP is on
// and the protocol is identification; OK otherwise.
inline constexpr char kIdentificationUnderDpRefused[] =
    "identification is not released while differential privacy is on: its noise would not "
    "cover one subject's influence on other subjects' searches";
absl::Status CheckProtocolAllowed(const fedface::v1::RunEvaluationRequest& request,
                                  const DifferentialPrivacyConfig& dp);

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

// ---- Step 4: the typed release ----------------------------------------------------------------

// Builds the release from histograms (noisy ones when `noisy` is given, else the aggregate's
// exact ones) under the k-minimum decision. Pure; no budget, no ledger.
// `ledger_head` is the ledger's head before this release is recorded (the vendor's anchor).
fedface::v1::EvaluationRelease BuildRelease(const fedface::v1::RunEvaluationRequest& request,
                                            const EvaluationAggregate& aggregate,
                                            const KMinimumDecision& k_minimum,
                                            const NoisyHistograms* noisy,
                                            const EgressGuardConfig& config,
                                            const fedface::v1::LedgerHead& ledger_head);

// ---- Step 5: allowlist ------------------------------------------------------------------------

// Default deny. OK only when the message's full type name is in `allowlist` AND its shape is
// one the guard knows is aggregate-only: for fedface.v1.EvaluationRelease, no unknown fields,
// strings only round_id / model_version with their patterns and the ledger head's 64 lower-case
// hex digits, repeated fields only the histogram
// counts with exactly kScoreBinCount finite non-negative values when released (none when
// withheld), every Suppression set. A type in the allowlist whose shape the guard does not know
// is refused too. PermissionDenied naming the type and the offending field otherwise.
absl::Status CheckAllowlisted(const google::protobuf::Message& message,
                              const std::set<std::string>& allowlist);

// ---- The guard --------------------------------------------------------------------------------

class EgressGuard {
 public:
  // budget and ledger must outlive the guard; `noise` is owned (MakeSecureNoiseSource() in a
  // node; SeededNoiseSource only in tests). Fails on an invalid config (k < 1, epsilon <= 0 or
  // c < 1 with DP on).
  static absl::StatusOr<std::unique_ptr<EgressGuard>> Create(EgressGuardConfig config,
                                                             PrivacyBudget* budget,
                                                             EgressLedger* ledger,
                                                             std::unique_ptr<NoiseSource> noise);

  // A repeated request: when (vendor, round_id) has a stored release for the same request hash,
  // appends it to the ledger again and returns the same bytes; nullopt when there is none (the
  // caller then runs the evaluation). ALREADY_EXISTS when the round_id was used for another
  // request. Call it before running an evaluation to avoid needless work.
  absl::StatusOr<std::optional<std::string>> Replay(
      std::string_view vendor, const fedface::v1::RunEvaluationRequest& request);

  // Runs steps 1-7 and returns the exact bytes to send (an EvaluationRelease).
  // REQUIRES aggregate.protocol == request.protocol (else FAILED_PRECONDITION).
  absl::StatusOr<std::string> ReleaseEvaluation(std::string_view vendor,
                                                const fedface::v1::RunEvaluationRequest& request,
                                                const EvaluationAggregate& aggregate);

  // The choke point for any other message: allowlist (step 5), deterministic serialization,
  // ledger (step 7). `summary` must be vendor-side data only (see EgressLedger::Append).
  absl::StatusOr<std::string> Seal(std::string_view vendor, std::string_view summary,
                                   const google::protobuf::Message& message);

  const EgressGuardConfig& config() const { return config_; }

 private:
  EgressGuard(EgressGuardConfig config, PrivacyBudget* budget, EgressLedger* ledger,
              std::unique_ptr<NoiseSource> noise)
      : config_(std::move(config)), budget_(budget), ledger_(ledger), noise_(std::move(noise)) {}
  absl::StatusOr<std::string> Record(std::string_view vendor, std::string_view summary,
                                     std::string_view type, std::string bytes);

  const EgressGuardConfig config_;
  PrivacyBudget* const budget_;
  EgressLedger* const ledger_;
  std::unique_ptr<NoiseSource> noise_;
  std::mutex noise_mu_;
};

}  // namespace fedface::partner
