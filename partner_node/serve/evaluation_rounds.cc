#include "partner_node/serve/evaluation_rounds.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/sha256.h"
#include "partner_node/serve/serve_log.h"
#include "partner_node/serve/unsent_release.h"

namespace fedface::partner {
namespace {

using fedface::v1::RunEvaluationRequest;

const char* ProtocolName(fedface::v1::EvaluationProtocol p) {
  switch (p) {
    case fedface::v1::EVALUATION_PROTOCOL_VERIFICATION:
      return "verification";
    case fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION:
      return "identification";
    default:
      return "unspecified";
  }
}

// The budget's own arithmetic (integer nano-epsilon), so the early refusal agrees with it.
int64_t Nano(double epsilon) { return std::llround(epsilon * 1e9); }

absl::Status HeldStatus(const HeldRelease& held) {
  return absl::FailedPreconditionError(
      absl::StrCat(kHeldForApproval, " (id ", held.id,
                   "): the partner reviews each release before it is "
                   "sent; retry this round_id later"));
}

}  // namespace

std::string RoundSummary(const RunEvaluationRequest& request) {
  return absl::StrCat(ProtocolName(request.protocol()), " model=", request.model_version(),
                      " seed=", request.seed(),
                      " non_mated_sample=", request.non_mated_sample_size());
}

EvaluationRounds::EvaluationRounds(EgressSettings egress, EvaluationJobContext job,
                                   EgressGuard* guard, PrivacyBudget* budget,
                                   HeldReleaseStore* held, std::ostream* log)
    : egress_(std::move(egress)),
      job_(std::move(job)),
      guard_(guard),
      budget_(budget),
      held_(held),
      log_(log) {}

void EvaluationRounds::Log(const std::string& line) { ServeLog(log_, line); }

absl::StatusOr<std::string> EvaluationRounds::Sent(std::string_view vendor,
                                                   const RunEvaluationRequest& request,
                                                   std::string bytes, const char* how) {
  Log(absl::StrCat("round ", request.round_id(), " vendor=", std::string(vendor), " ",
                   RoundSummary(request), ": ", how, " ", bytes.size(),
                   " bytes sha256=", Sha256Hex(bytes)));
  return bytes;
}

absl::StatusOr<std::string> EvaluationRounds::AnswerAgain(std::string_view vendor,
                                                          const RunEvaluationRequest& request) {
  absl::StatusOr<std::optional<std::string>> replay = guard_->Replay(vendor, request);
  if (!replay.ok()) return replay.status();
  if (!replay->has_value()) {
    return absl::InternalError("the release of this round is missing on the partner's side");
  }
  return Sent(vendor, request, **std::move(replay), "sent again (concurrent identical request)");
}

absl::StatusOr<std::string> EvaluationRounds::Answer(
    std::string_view vendor, const RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted) {
  const auto start = std::chrono::steady_clock::now();
  auto refused = [&](const absl::Status& s) {
    Log(absl::StrCat("round ", request.round_id(), " vendor=", std::string(vendor),
                     ": refused: ", s.ToString()));
    return s;
  };
  if (absl::Status s = CheckRequest(request); !s.ok()) return refused(s);
  // Before any work: a protocol the guard would refuse is refused now (the guard checks again).
  if (absl::Status s = CheckProtocolAllowed(request, egress_.guard.dp); !s.ok()) {
    return refused(s);
  }

  // 1. A round this vendor already received (or that a person approved).
  absl::StatusOr<std::optional<std::string>> replay = guard_->Replay(vendor, request);
  if (!replay.ok()) return refused(replay.status());
  if (replay->has_value()) {
    if (held_ != nullptr) {
      absl::StatusOr<std::optional<HeldRelease>> held = held_->Find(vendor, request.round_id());
      if (held.ok() && held->has_value() && (*held)->state != HeldState::kSent) {
        if (absl::Status s = held_->MarkSent((*held)->id); !s.ok()) {
          Log(absl::StrCat("held release ", (*held)->id, ": cannot mark sent: ", s.ToString()));
        } else {
          return Sent(vendor, request, **std::move(replay),
                      absl::StrCat("approved release ", (*held)->id, " sent:").c_str());
        }
      }
    }
    return Sent(vendor, request, **std::move(replay), "replayed stored release:");
  }

  // 2. A round held for approval.
  if (egress_.require_approval) {
    absl::StatusOr<std::optional<HeldRelease>> held = held_->Find(vendor, request.round_id());
    if (!held.ok()) {
      Log(absl::StrCat("held releases: ", held.status().ToString()));
      return absl::InternalError("the partner's held releases cannot be read");
    }
    if (held->has_value()) {
      const HeldRelease& h = **held;
      if (h.request_sha256 != RequestHash(request)) {
        return refused(absl::AlreadyExistsError(
            absl::StrCat("round_id '", request.round_id(),
                         "' was already used by this vendor for a different request")));
      }
      switch (h.state) {
        case HeldState::kHeld:
          return refused(HeldStatus(h));
        case HeldState::kDeclined:
          return refused(absl::PermissionDeniedError(
              absl::StrCat("the partner declined release ", h.id, " of this round")));
        default:
          Log(absl::StrCat("held release ", h.id, " is ", HeldStateName(h.state),
                           " but the budget store has no release for it"));
          return absl::InternalError("the approved release of this round is missing");
      }
    }
  }

  // 3. A budget that cannot pay for one more release.
  if (egress_.guard.dp.enabled) {
    absl::StatusOr<double> spent = budget_->SpentByAll();
    if (!spent.ok()) {
      Log(absl::StrCat("privacy budget: ", spent.status().ToString()));
      return absl::InternalError("the partner's privacy budget cannot be read");
    }
    if (Nano(*spent) + Nano(egress_.guard.dp.epsilon_per_release) > Nano(egress_.epsilon_budget)) {
      return refused(absl::ResourceExhaustedError(absl::StrFormat(
          "privacy budget exhausted for this vendor: spent epsilon %.6g of %.6g, this release "
          "needs %.6g",
          *spent, egress_.epsilon_budget, egress_.guard.dp.epsilon_per_release)));
    }
  }

  // 4. The evaluation.
  absl::StatusOr<EvaluationAggregate> aggregate = EvaluateOnPartner(job_, request, interrupted);
  if (!aggregate.ok()) return refused(aggregate.status());
  if (interrupted) {
    if (absl::Status s = interrupted(); !s.ok()) return refused(s);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Log(absl::StrFormat("round %s vendor=%s: evaluated in %.3f s", request.round_id(),
                      std::string(vendor), seconds));

  // 5. The release.
  if (!egress_.require_approval) {
    absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(vendor, request, *aggregate);
    if (!bytes.ok()) return refused(bytes.status());
    return Sent(vendor, request, *std::move(bytes), "released");
  }
  const std::string scratch =
      std::filesystem::path(egress_.held_releases_path).parent_path().string();
  absl::StatusOr<std::string> bytes =
      BuildUnsentRelease(guard_->config(), vendor, request, *aggregate, scratch);
  if (!bytes.ok()) return refused(bytes.status());
  HeldRelease row;
  row.vendor = std::string(vendor);
  row.round_id = request.round_id();
  row.request_sha256 = RequestHash(request);
  row.summary = RoundSummary(request);
  row.epsilon = egress_.guard.dp.enabled ? egress_.guard.dp.epsilon_per_release : 0.0;
  row.release_bytes = *std::move(bytes);
  absl::StatusOr<HeldRelease> held = held_->Hold(row);
  if (!held.ok()) {
    if (held.status().code() == absl::StatusCode::kAlreadyExists) return refused(held.status());
    Log(absl::StrCat("held releases: ", held.status().ToString()));
    return absl::InternalError("the partner could not hold the release for approval");
  }
  Log(absl::StrCat("round ", request.round_id(), " vendor=", std::string(vendor), ": release ",
                   held->id, " held for approval (", held->release_bytes.size(),
                   " bytes sha256=", Sha256Hex(held->release_bytes),
                   "); approve with `partner_node releases "
                   "approve ",
                   held->id, "`"));
  return HeldStatus(*held);
}

}  // namespace fedface::partner
