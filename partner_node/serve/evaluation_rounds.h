// How the partner answers a vendor's evaluation round (one RunEvaluationRequest), apart from
// gRPC: the decision sequence that the vendor-facing service runs on a worker thread.
//
//   1. EgressGuard's CheckRequest; then EgressGuard::Replay: a round already released to this
//      vendor gets the stored bytes again (recorded again in the ledger), nothing recomputed.
//   2. Approval mode: a round held for approval is answered FAILED_PRECONDITION
//      "held for approval (id N) ..." until a person approves it (`partner_node releases
//      approve N` charges the budget and stores the bytes, so step 1 then sends them) or
//      PERMISSION_DENIED once declined.
//   3. With differential privacy on, a vendor whose remaining budget cannot pay for one more
//      release is refused (RESOURCE_EXHAUSTED) before any work is done.
//   4. The evaluation job (evaluation_job.h), interruptible by deadline, cancellation, shutdown.
//   5. Without approval: EgressGuard::ReleaseEvaluation (k-minimum, noise, allowlist, budget,
//      ledger) and exactly its bytes are what the service sends. With approval: the guard's
//      bytes are built unsent (unsent_release.h) and held; FAILED_PRECONDITION as in 2.
// Every status returned is safe to send to the vendor.
//
// Thread safety: Answer may run on several threads at once.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/serve/evaluation_job.h"
#include "partner_node/serve/held_release_store.h"
#include "partner_node/serve/serve_config.h"

namespace fedface::partner {

// The prefix of the status message of a held round; the vendor retries the same round_id later.
inline constexpr char kHeldForApproval[] = "held for approval";

class EvaluationRounds {
 public:
  // guard and budget must outlive this; held must too and is required when
  // egress.require_approval. `log` may be null.
  EvaluationRounds(EgressSettings egress, EvaluationJobContext job, EgressGuard* guard,
                   PrivacyBudget* budget, HeldReleaseStore* held, std::ostream* log);

  // The exact bytes to send for the request, or the status to send instead. `interrupted`
  // (may be empty) is polled during the evaluation; nothing is charged when it fires.
  absl::StatusOr<std::string> Answer(std::string_view vendor,
                                     const fedface::v1::RunEvaluationRequest& request,
                                     const std::function<absl::Status()>& interrupted);

  // For a request identical to one Answer just released: the stored bytes again, recorded in
  // the ledger once more (every send is). NOT_FOUND-like INTERNAL when there is none.
  absl::StatusOr<std::string> AnswerAgain(std::string_view vendor,
                                          const fedface::v1::RunEvaluationRequest& request);

 private:
  absl::StatusOr<std::string> Sent(std::string_view vendor,
                                   const fedface::v1::RunEvaluationRequest& request,
                                   std::string bytes, const char* how);
  void Log(const std::string& line);

  const EgressSettings egress_;
  const EvaluationJobContext job_;
  EgressGuard* const guard_;
  PrivacyBudget* const budget_;
  HeldReleaseStore* const held_;
  std::ostream* const log_;
};

// "verification model=1.0.0 seed=7 non_mated_sample=0": the request's own values, for logs and
// held releases.
std::string RoundSummary(const fedface::v1::RunEvaluationRequest& request);

}  // namespace fedface::partner
