#include "partner_node/serve/evaluation_rounds.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

using fedface::v1::RunEvaluationRequest;

EvaluationRounds::EvaluationRounds(EvaluationJobContext job, EgressGuard* guard, std::ostream* log,
                                   VendorRateLimiter* limiter)
    : job_(std::move(job)), guard_(guard), log_(log), limiter_(limiter) {}

absl::Status EvaluationRounds::RateLimited(std::string_view vendor, RateLimitKind kind) {
  if (limiter_ == nullptr) return absl::OkStatus();
  const RateLimitDecision d = limiter_->Admit(vendor, kind);
  if (d.allowed) return absl::OkStatus();
  const std::string window = absl::StrCat(
      "kind=", RateLimitKindName(kind), " limit=", d.limit,
      " window=", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", d.window_start, absl::UTCTimeZone()), "+",
      d.window_seconds, "s");
  if (d.first_in_window) {
    Log(absl::StrCat("vendor=", std::string(vendor), ": rate limit reached (", window,
                     "); refusing until the window ends, recorded once"));
  }
  return guard_->RefuseRateLimited(
      vendor, absl::ResourceExhaustedError(absl::StrCat(kRateLimitPhrase, ": ", window)),
      d.first_in_window, window);
}

void EvaluationRounds::Log(const std::string& line) { ServeLog(log_, line); }

absl::StatusOr<std::string> EvaluationRounds::Sent(std::string_view vendor,
                                                   const RunEvaluationRequest& request,
                                                   std::string bytes, std::string_view how) {
  Log(absl::StrCat("round ", request.round_id(), " vendor=", std::string(vendor), " ",
                   RoundSummary(request), ": ", std::string(how), " ", bytes.size(),
                   " bytes sha256=", Sha256Hex(bytes)));
  return bytes;
}

absl::Status EvaluationRounds::Refuse(std::string_view vendor, std::string_view round_id,
                                      const absl::Status& local, bool after_evaluation) {
  const absl::Status sent = guard_->Refuse(vendor, round_id, local, after_evaluation);
  Log(absl::StrCat("round ", std::string(round_id), " vendor=", std::string(vendor), ": refused ",
                   absl::StatusCodeToString(sent.code()),
                   sent.message() == local.message()
                       ? std::string()
                       : absl::StrCat(" (catalogue text; locally: ", local.message(), ")")));
  return sent;
}

absl::StatusOr<std::string> EvaluationRounds::AnswerAgain(std::string_view vendor,
                                                          const RunEvaluationRequest& request) {
  absl::StatusOr<std::optional<std::string>> replay = guard_->Replay(vendor, request);
  if (!replay.ok()) return Refuse(vendor, request.round_id(), replay.status());
  if (!replay->has_value()) {
    return Refuse(
        vendor, request.round_id(),
        absl::InternalError("the release of this round is missing on the partner's side"));
  }
  return Sent(vendor, request, **std::move(replay), "sent again (concurrent identical request)");
}

absl::StatusOr<std::string> EvaluationRounds::Answer(
    std::string_view vendor, const RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted) {
  const auto start = std::chrono::steady_clock::now();
  // 0. The vendor's own rate limits: replays, and rounds that may make the partner re-embed.
  if (limiter_ != nullptr) {
    absl::StatusOr<bool> replay = guard_->HasStoredRelease(vendor, request.round_id());
    if (!replay.ok()) return Refuse(vendor, request.round_id(), replay.status());
    const bool other_version = request.model_version() != job_.model->current()->version;
    if (*replay || other_version) {
      RETURN_IF_ERROR(RateLimited(
          vendor, *replay ? RateLimitKind::kReplays : RateLimitKind::kOtherVersionRounds));
    }
  }
  // 1. What the guard decides before any work.
  absl::StatusOr<Admission> admission = guard_->Admit(vendor, request);
  if (!admission.ok()) return Refuse(vendor, request.round_id(), admission.status());
  if (admission->bytes) return Sent(vendor, request, *std::move(admission->bytes), admission->how);

  // 2. The evaluation. From here on a refusal may depend on the partner's data.
  auto refused = [&](const absl::Status& s) {
    return Refuse(vendor, request.round_id(), s, /*after_evaluation=*/true);
  };
  absl::StatusOr<EvaluationAggregate> aggregate = EvaluateOnPartner(job_, request, interrupted);
  if (!aggregate.ok()) return refused(aggregate.status());
  if (interrupted) {
    if (absl::Status s = interrupted(); !s.ok()) return refused(s);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Log(absl::StrFormat("round %s vendor=%s: evaluated in %.3f s", request.round_id(),
                      std::string(vendor), seconds));

  // 3. The release (or, in approval mode, the hold).
  absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(vendor, request, *aggregate);
  if (!bytes.ok()) return refused(bytes.status());
  return Sent(vendor, request, *std::move(bytes), "released");
}

}  // namespace fedface::partner
