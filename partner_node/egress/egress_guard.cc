#include "partner_node/egress/egress_guard.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "core/common/proto_bytes.h"
#include "core/common/status_macros.h"
#include "core/wire/protocol_names.h"
#include "partner_node/egress/evaluation_fingerprint.h"

namespace fedface::partner {
namespace {

using fedface::v1::RunEvaluationRequest;

// Statuses that may be passed on as they are; anything else is a local failure whose detail
// (file names, SQLite messages) stays in the partner's log.
absl::Status ForVendor(const absl::Status& s, const char* step) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kPermissionDenied:
      return s;
    default:
      std::cerr << "egress guard: " << step << ": " << s << "\n";
      return absl::InternalError(
          absl::StrCat("egress guard: ", step, " failed on the partner's side"));
  }
}

absl::Status HeldStatus(const HeldRelease& held) {
  return absl::FailedPreconditionError(absl::StrCat(
      kHeldForApproval, " (id ", held.id,
      "): the partner reviews each release before it is sent; retry this round_id later "
      "(approve with `partner_node releases approve ",
      held.id, "`)"));
}

absl::Status RoundIdReused(const RunEvaluationRequest& request) {
  return absl::AlreadyExistsError(
      absl::StrCat("round_id '", request.round_id(),
                   "' was already used by this vendor for a different request"));
}

std::string LedgerSummary(const RunEvaluationRequest& request, bool replay) {
  return absl::StrCat("RunEvaluation ", replay ? "replay " : "", "round=", request.round_id(),
                      " protocol=", ProtocolName(request.protocol()),
                      " model=", request.model_version());
}

}  // namespace

absl::StatusOr<std::unique_ptr<EgressGuard>> EgressGuard::Create(EgressGuardConfig config,
                                                                 PrivacyBudget* budget,
                                                                 EgressLedger* ledger,
                                                                 std::unique_ptr<NoiseSource> noise,
                                                                 HeldReleaseStore* held) {
  if (budget == nullptr || ledger == nullptr || noise == nullptr) {
    return absl::InvalidArgumentError("egress guard: budget, ledger and noise are required");
  }
  if (config.require_approval && held == nullptr) {
    return absl::InvalidArgumentError(
        "egress guard: approval mode needs the store of held releases");
  }
  if (config.k_minimum < kMinimumK) {
    return absl::InvalidArgumentError(
        absl::StrCat("egress guard: k must be >= ", kMinimumK, " (egress.k_minimum)"));
  }
  if (!config.dp.enabled) {
    return absl::InvalidArgumentError(
        "egress guard: differential privacy cannot be switched off toward a vendor "
        "(egress.differential_privacy)");
  }
  if (config.dp.enabled &&
      (!(config.dp.epsilon_per_release > 0) || !std::isfinite(config.dp.epsilon_per_release) ||
       config.dp.contribution_bound < 1)) {
    return absl::InvalidArgumentError(
        "egress guard: differential privacy needs epsilon > 0 and a contribution bound >= 1");
  }
  if (config.dp.genuine_contribution_bound < 1 || config.dp.impostor_contribution_bound < 2 ||
      config.dp.impostor_contribution_bound % 2 != 0) {
    return absl::InvalidArgumentError(
        "egress guard: verification needs egress.genuine_contribution_bound >= 1 and an even "
        "egress.impostor_contribution_bound >= 2");
  }
  if (!(config.dp.impostor_epsilon_share >= kMinImpostorEpsilonShare) ||
      !(config.dp.impostor_epsilon_share <= kMaxImpostorEpsilonShare)) {
    return absl::InvalidArgumentError(
        absl::StrCat("egress guard: egress.impostor_epsilon_share must be in [",
                     kMinImpostorEpsilonShare, ", ", kMaxImpostorEpsilonShare, "]"));
  }
  return std::unique_ptr<EgressGuard>(
      new EgressGuard(std::move(config), budget, ledger, std::move(noise), held));
}

absl::StatusOr<std::string> EgressGuard::Record(std::string_view vendor, std::string_view summary,
                                                std::string_view type, std::string bytes) {
  absl::StatusOr<LedgerEntry> entry = ledger_->Append(vendor, summary, type, bytes);
  if (!entry.ok()) return ForVendor(entry.status(), "recording in the egress ledger");
  return bytes;
}

absl::StatusOr<std::string> EgressGuard::Seal(std::string_view vendor, std::string_view summary,
                                              const google::protobuf::Message& message) {
  RETURN_IF_ERROR(CheckVendorIdentity(vendor));
  RETURN_IF_ERROR(CheckAllowlisted(message, config_.allowlist, &config_.dp));
  return Record(vendor, summary, message.GetDescriptor()->full_name(),
                SerializeDeterministically(message));
}

absl::Status EgressGuard::Refuse(std::string_view vendor, std::string_view round_id,
                                 const absl::Status& local, bool after_evaluation) {
  const bool known_vendor = CheckVendorIdentity(vendor).ok();
  absl::Status sent = VendorStatus(local);
  if (after_evaluation && config_.dp.enabled && DependsOnPartnerData(local)) {
    absl::Status charged =
        known_vendor ? budget_->Charge(vendor, config_.dp.epsilon_per_release)
                     : absl::InternalError("a data-dependent refusal without a vendor identity");
    if (!charged.ok()) sent = VendorStatus(ForVendor(charged, "charging a refusal"));
  }
  const std::string summary = absl::StrCat(
      "Refusal ",
      IsValidRoundId(round_id) ? absl::StrCat("round=", std::string(round_id), " ") : "",
      "code=", absl::StatusCodeToString(sent.code()));
  absl::StatusOr<LedgerEntry> entry = ledger_->Append(
      known_vendor ? vendor : "(unidentified caller)", summary,
      IsRateLimitRefusal(sent) ? kRateLimitLedgerType : kRefusalLedgerType, RefusalBytes(sent));
  if (!entry.ok()) {
    std::cerr << "egress guard: recording a refusal in the egress ledger: " << entry.status()
              << "\n";
  }
  return sent;
}

absl::Status EgressGuard::RefuseRateLimited(std::string_view vendor, const absl::Status& local,
                                            bool first_in_window, std::string_view window) {
  const absl::Status sent = VendorStatus(local);
  if (!IsRateLimitRefusal(sent)) {
    return Refuse(vendor, "", absl::InternalError("a rate-limit refusal off the catalogue"),
                  /*after_evaluation=*/false);
  }
  if (!first_in_window) return sent;
  absl::StatusOr<LedgerEntry> entry = ledger_->Append(
      CheckVendorIdentity(vendor).ok() ? vendor : "(unidentified caller)",
      absl::StrCat("RateLimited ", std::string(window)), kRateLimitLedgerType, RefusalBytes(sent));
  if (!entry.ok()) {
    std::cerr << "egress guard: recording a rate-limit window in the egress ledger: "
              << entry.status() << "\n";
  }
  return sent;
}

absl::StatusOr<std::optional<std::string>> EgressGuard::Replay(
    std::string_view vendor, const RunEvaluationRequest& request) {
  RETURN_IF_ERROR(CheckVendorIdentity(vendor));
  RETURN_IF_ERROR(CheckRequest(request));
  absl::StatusOr<std::optional<StoredRelease>> stored = budget_->Find(vendor, request.round_id());
  if (!stored.ok()) return ForVendor(stored.status(), "reading the release store");
  if (!stored->has_value()) return std::optional<std::string>();
  if ((*stored)->request_sha256 != RequestHash(request)) return RoundIdReused(request);
  // The stored bytes passed every check when first released; they are sent again, so they are
  // recorded again.
  ASSIGN_OR_RETURN(std::string bytes,
                   Record(vendor, LedgerSummary(request, /*replay=*/true), kEvaluationReleaseType,
                          std::move((*stored)->release_bytes)));
  return std::optional<std::string>(std::move(bytes));
}

absl::Status EgressGuard::HeldDecision(std::string_view vendor,
                                       const RunEvaluationRequest& request) {
  if (!config_.require_approval) return absl::OkStatus();
  absl::StatusOr<std::optional<HeldRelease>> held = held_->Find(vendor, request.round_id());
  if (!held.ok()) return ForVendor(held.status(), "reading the held releases");
  if (!held->has_value()) return absl::OkStatus();
  const HeldRelease& h = **held;
  if (h.request_sha256 != RequestHash(request)) return RoundIdReused(request);
  switch (h.state) {
    case HeldState::kHeld:
      return HeldStatus(h);
    case HeldState::kDeclined:
      return absl::PermissionDeniedError(
          absl::StrCat("the partner declined release ", h.id, " of this round"));
    default:
      std::cerr << "egress guard: held release " << h.id << " is " << HeldStateName(h.state)
                << " but the budget store has no release for it\n";
      return absl::InternalError("the approved release of this round is missing");
  }
}

absl::StatusOr<bool> EgressGuard::HasStoredRelease(std::string_view vendor,
                                                   std::string_view round_id) {
  absl::StatusOr<std::optional<StoredRelease>> stored = budget_->Find(vendor, round_id);
  if (!stored.ok()) return ForVendor(stored.status(), "reading the release store");
  return stored->has_value();
}

absl::StatusOr<Admission> EgressGuard::Admit(std::string_view vendor,
                                             const RunEvaluationRequest& request) {
  RETURN_IF_ERROR(CheckVendorIdentity(vendor));
  RETURN_IF_ERROR(CheckRequest(request));
  // A protocol that could never be released is refused before any work.
  RETURN_IF_ERROR(CheckProtocolAllowed(request, config_.dp));

  // A round this vendor already received, or that a person approved.
  ASSIGN_OR_RETURN(std::optional<std::string> replay, Replay(vendor, request));
  if (replay.has_value()) {
    Admission sent{std::move(replay), "replayed stored release"};
    if (held_ == nullptr) return sent;
    absl::StatusOr<std::optional<HeldRelease>> held = held_->Find(vendor, request.round_id());
    if (held.ok() && held->has_value() && (*held)->state != HeldState::kSent) {
      if (absl::Status s = held_->MarkSent((*held)->id); !s.ok()) {
        std::cerr << "egress guard: held release " << (*held)->id << ": cannot mark sent: " << s
                  << "\n";
      } else {
        sent.how = absl::StrCat("approved release ", (*held)->id, " sent");
      }
    }
    return sent;
  }

  // A round held for approval, or declined.
  RETURN_IF_ERROR(HeldDecision(vendor, request));

  // A budget that cannot pay for one more release: refused before any work.
  if (config_.dp.enabled) {
    if (absl::Status s = budget_->CanPay(config_.dp.epsilon_per_release); !s.ok()) {
      return ForVendor(s, "reading the privacy budget");
    }
  }
  return Admission{};
}

absl::StatusOr<ComposedRelease> EgressGuard::Compose(const RunEvaluationRequest& request,
                                                     const EvaluationAggregate& aggregate) {
  // The ledger head the release extends: the vendor's anchor against removal of the ledger's
  // last entries (vendor-side data, nothing derived from a face).
  absl::StatusOr<LedgerHeadPosition> head = ledger_->Head();
  if (!head.ok()) return ForVendor(head.status(), "reading the egress ledger");
  fedface::v1::LedgerHead ledger_head;
  ledger_head.set_seq(static_cast<uint64_t>(head->seq));
  ledger_head.set_entry_hash(head->entry_hash);
  absl::StatusOr<ComposedRelease> composed;
  {
    std::lock_guard<std::mutex> lock(noise_mu_);
    composed = ComposeRelease(config_, request, aggregate, *noise_, ledger_head);
  }
  if (!composed.ok() && composed.status().code() == absl::StatusCode::kInternal) {
    return ForVendor(composed.status(), "checking the release");
  }
  return composed;
}

absl::StatusOr<std::string> EgressGuard::Hold(std::string_view vendor,
                                              const RunEvaluationRequest& request,
                                              const EvaluationAggregate& aggregate,
                                              ComposedRelease composed) {
  HeldRelease row;
  row.vendor = std::string(vendor);
  row.round_id = request.round_id();
  row.request_sha256 = RequestHash(request);
  row.summary = RoundSummary(request);
  row.epsilon = composed.epsilon;
  row.release_bytes = std::move(composed.bytes);
  row.request_bytes = request.SerializeAsString();
  row.evaluation_sha256 = EvaluationFingerprint(aggregate);
  absl::StatusOr<HeldRelease> held = held_->Hold(row);
  if (!held.ok()) {
    if (held.status().code() == absl::StatusCode::kAlreadyExists) return held.status();
    return ForVendor(held.status(), "holding the release for approval");
  }
  return HeldStatus(*held);
}

absl::StatusOr<std::string> EgressGuard::ReleaseEvaluation(std::string_view vendor,
                                                           const RunEvaluationRequest& request,
                                                           const EvaluationAggregate& aggregate) {
  absl::StatusOr<std::optional<std::string>> replay = Replay(vendor, request);
  if (!replay.ok()) return replay.status();
  if (replay->has_value()) return **replay;

  ASSIGN_OR_RETURN(ComposedRelease composed, Compose(request, aggregate));
  if (config_.require_approval) return Hold(vendor, request, aggregate, std::move(composed));

  // Charge and store before anything leaves; a concurrent identical request may have won the
  // race, in which case its bytes are the ones to send.
  StoredRelease candidate;
  candidate.vendor = std::string(vendor);
  candidate.round_id = request.round_id();
  candidate.request_sha256 = RequestHash(request);
  candidate.epsilon = composed.epsilon;
  candidate.release_bytes = std::move(composed.bytes);
  absl::StatusOr<StoredRelease> stored = budget_->ChargeAndStore(candidate);
  if (!stored.ok()) return ForVendor(stored.status(), "charging the privacy budget");
  return Record(vendor, LedgerSummary(request, /*replay=*/false), kEvaluationReleaseType,
                std::move(stored->release_bytes));
}

}  // namespace fedface::partner
