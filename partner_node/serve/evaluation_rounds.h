// How the partner answers a vendor's evaluation round (one RunEvaluationRequest), apart from
// gRPC: the sequence the vendor-facing service runs on a worker thread. Every decision about
// what leaves is the egress guard's (partner_node/egress/egress_guard.h); this file only runs
// the evaluation between the guard's two calls and logs.
//
//   0. The vendor's rate limits (vendor_rate_limiter.h): a replay of a released round, or a
//      round naming another model version (re-embedding work), beyond this window's limit is
//      refused with the fixed rate-limit text, recorded once per window (RateLimited).
//   1. EgressGuard::Admit: a replay or an approved release is sent as it is; a refusal (held,
//      declined, budget, protocol) is returned before any work.
//   2. The evaluation job (evaluation_job.h), interruptible by deadline, cancellation, shutdown.
//   3. EgressGuard::ReleaseEvaluation: exactly its bytes are sent (or, in approval mode, the
//      release is held and the vendor told so).
// Every status returned is final: the catalogue text (vendor_status.h), recorded in the ledger
// and, when it depends on the evaluated data, charged (EgressGuard::Refuse).
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
#include "partner_node/serve/evaluation_job.h"
#include "partner_node/serve/vendor_rate_limiter.h"

namespace fedface::partner {

class EvaluationRounds {
 public:
  // guard (and limiter) must outlive this. `log` and `limiter` may be null (no rate limits).
  EvaluationRounds(EvaluationJobContext job, EgressGuard* guard, std::ostream* log,
                   VendorRateLimiter* limiter = nullptr);

  // Counts one call of `kind` by `vendor`: OK when within its limit, else the status to send
  // (the catalogue's rate-limit text, recorded by the guard once per window).
  absl::Status RateLimited(std::string_view vendor, RateLimitKind kind);

  // The exact bytes to send for the request, or the status to send instead. `interrupted`
  // (may be empty) is polled during the evaluation; nothing is charged when it fires.
  absl::StatusOr<std::string> Answer(std::string_view vendor,
                                     const fedface::v1::RunEvaluationRequest& request,
                                     const std::function<absl::Status()>& interrupted);

  // The status to send for a refusal of this service (`local`, logged when its text differs):
  // built and recorded by the guard (EgressGuard::Refuse). `round_id` may be unchecked.
  absl::Status Refuse(std::string_view vendor, std::string_view round_id, const absl::Status& local,
                      bool after_evaluation = false);

  // For a request identical to one Answer just released: the stored bytes again, recorded in
  // the ledger once more (every send is). INTERNAL when there is none.
  absl::StatusOr<std::string> AnswerAgain(std::string_view vendor,
                                          const fedface::v1::RunEvaluationRequest& request);

 private:
  absl::StatusOr<std::string> Sent(std::string_view vendor,
                                   const fedface::v1::RunEvaluationRequest& request,
                                   std::string bytes, std::string_view how);
  void Log(const std::string& line);

  const EvaluationJobContext job_;
  EgressGuard* const guard_;
  std::ostream* const log_;
  VendorRateLimiter* const limiter_;
};

}  // namespace fedface::partner
