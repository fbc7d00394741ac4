// The egress guard: THE ONLY code that decides what the partner sends a vendor (DESIGN.md,
// boundary rule 2). Every byte for the vendor comes out of it, in two steps:
//
//   pure        release_composer.h   request + aggregate (+ noise) -> release bytes
//                                     (k-minimum, differential privacy, typed release, allowlist)
//   committing  this class           budget, releases held for approval, ledger
//
//   request ──► Admit               vendor identity and request (vendor_request.h); a round
//                                    already released to this vendor: its stored bytes again
//                                    (replay, recorded again); a round held for approval or
//                                    declined: refused; a budget that cannot pay one more
//                                    release: refused. Only then does the caller evaluate.
//   failure ──► Refuse             the catalogue text, charged when it depends on the data,
//                                    recorded in the ledger like a message
//   aggregate ► ReleaseEvaluation   ComposeRelease, then without approval: PrivacyBudget::
//                                    ChargeAndStore (charge + exact bytes, atomically) and
//                                    EgressLedger::Append (durable before returning); with
//                                    approval: held, nothing charged or sent.
//   (preview)   PreviewRelease (release_composer.h): composed with fresh CSPRNG noise; nothing
//                                    charged, held or recorded.
//
// ENSURES
//   - Only what ComposeRelease built (or, for Seal, what CheckAllowlisted admits) leaves.
//   - With DP on: noise from a CSPRNG the vendor cannot seed; epsilon charged before any byte
//     leaves; a budget that cannot pay is refused before any work.
//   - A repeated identical request returns the byte-identical stored release, charged once.
//   - Every returned byte string was appended to the ledger first.
//   - Error statuses name only the vendor's own values; a local store failure becomes INTERNAL
//     with a fixed text (the detail goes to the partner's stderr). What the vendor finally
//     reads is the fixed catalogue text of vendor_status.h.
// NEVER comes out: pixels, crops, landmarks, embeddings, per-image or per-comparison scores,
//   subject names, file names or paths, per-subject counts, exact counts, the noise, or any
//   free text from partner data.
// Thread safety: an EgressGuard may be used from several threads at once (the stores serialise
//   themselves; the noise source is guarded).
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/egress_config.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/held_release_store.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/egress/release_composer.h"
#include "partner_node/egress/release_shape.h"
#include "partner_node/egress/vendor_request.h"
#include "partner_node/egress/vendor_status.h"

namespace google::protobuf {
class Message;
}

namespace fedface::partner {

// The prefix of the status text of a held round; the vendor retries the same round_id later.
inline constexpr char kHeldForApproval[] = "held for approval";

// What Admit decided for a request that may be answered.
struct Admission {
  // The bytes to send now (a replay, or a release a person approved), already recorded in the
  // ledger; nullopt: run the evaluation, then call ReleaseEvaluation.
  std::optional<std::string> bytes;
  std::string how;  // for the partner's log: "replayed stored release", "approved release 3 sent"
};

class EgressGuard {
 public:
  // budget and ledger (and held, required when config.require_approval) must outlive the
  // guard; `noise` is owned (MakeSecureNoiseSource() in a node; SeededNoiseSource only in
  // tests). Fails on an invalid config (k below kMinimumK, epsilon <= 0 or c < 1 with DP on).
  static absl::StatusOr<std::unique_ptr<EgressGuard>> Create(EgressGuardConfig config,
                                                             PrivacyBudget* budget,
                                                             EgressLedger* ledger,
                                                             std::unique_ptr<NoiseSource> noise,
                                                             HeldReleaseStore* held = nullptr);

  // Everything decided before any work (see the top of this file). Errors are refusals to send.
  absl::StatusOr<Admission> Admit(std::string_view vendor,
                                  const fedface::v1::RunEvaluationRequest& request);

  // A repeated request: when (vendor, round_id) has a stored release for the same request hash,
  // appends it to the ledger again and returns the same bytes; nullopt when there is none.
  // ALREADY_EXISTS when the round_id was used for another request.
  absl::StatusOr<std::optional<std::string>> Replay(
      std::string_view vendor, const fedface::v1::RunEvaluationRequest& request);

  // Whether (vendor, round_id) has a stored release, i.e. whether a call for it would be a
  // replay (the vendor's own knowledge: it received that release). Records nothing.
  absl::StatusOr<bool> HasStoredRelease(std::string_view vendor, std::string_view round_id);

  // Composes the release and commits it: the exact bytes to send (an EvaluationRelease), or, in
  // approval mode, FAILED_PRECONDITION "held for approval (id N ...)" once the bytes are held.
  // A repeated identical request gets the stored bytes (Replay).
  absl::StatusOr<std::string> ReleaseEvaluation(std::string_view vendor,
                                                const fedface::v1::RunEvaluationRequest& request,
                                                const EvaluationAggregate& aggregate);

  // The status to send instead of a release, for any refusal or failure of a vendor's call:
  // the catalogue text of `local` (vendor_status.h), recorded in the ledger first (type
  // kRefusalLedgerType). When `after_evaluation` (the partner's data was evaluated for this
  // call) and the reason depends on that data (DependsOnPartnerData), the release's epsilon is
  // charged first, as a release would be; when the budget cannot pay that, the vendor is told
  // the budget is exhausted instead. `vendor` and `round_id` may be unchecked (a refused caller):
  // invalid values are not recorded.
  absl::Status Refuse(std::string_view vendor, std::string_view round_id, const absl::Status& local,
                      bool after_evaluation);

  // A call refused by a per-vendor rate limit (`local` names the limit, for the log): the
  // catalogue's kRateLimitedText. Recorded in the ledger only when `first_in_window`, as one row
  // of type kRateLimitLedgerType whose summary is `window` (vendor-side data only: kind, window
  // start and length, limit); the other refusals of that window are not recorded, so a vendor
  // calling in a loop cannot grow the ledger. Never charged: it depends on no partner data.
  absl::Status RefuseRateLimited(std::string_view vendor, const absl::Status& local,
                                 bool first_in_window, std::string_view window);

  // The choke point for any other message: allowlist, deterministic serialization, ledger.
  // `summary` must be vendor-side data only (see EgressLedger::Append).
  absl::StatusOr<std::string> Seal(std::string_view vendor, std::string_view summary,
                                   const google::protobuf::Message& message);

  const EgressGuardConfig& config() const { return config_; }

 private:
  EgressGuard(EgressGuardConfig config, PrivacyBudget* budget, EgressLedger* ledger,
              std::unique_ptr<NoiseSource> noise, HeldReleaseStore* held)
      : config_(std::move(config)),
        budget_(budget),
        ledger_(ledger),
        held_(held),
        noise_(std::move(noise)) {}
  absl::StatusOr<ComposedRelease> Compose(const fedface::v1::RunEvaluationRequest& request,
                                          const EvaluationAggregate& aggregate);
  absl::StatusOr<std::string> Hold(std::string_view vendor,
                                   const fedface::v1::RunEvaluationRequest& request,
                                   const EvaluationAggregate& aggregate, ComposedRelease composed);
  absl::Status HeldDecision(std::string_view vendor,
                            const fedface::v1::RunEvaluationRequest& request);
  absl::StatusOr<std::string> Record(std::string_view vendor, std::string_view summary,
                                     std::string_view type, std::string bytes);

  const EgressGuardConfig config_;
  PrivacyBudget* const budget_;
  EgressLedger* const ledger_;
  HeldReleaseStore* const held_;
  std::unique_ptr<NoiseSource> noise_;
  std::mutex noise_mu_;
};

}  // namespace fedface::partner
