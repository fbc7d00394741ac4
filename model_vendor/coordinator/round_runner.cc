#include "model_vendor/coordinator/round_runner.h"

#include <grpcpp/grpcpp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/config/peer_identity.h"
#include "fedface/v1/evaluation.grpc.pb.h"
#include "model_vendor/coordinator/release_check.h"

namespace fedface::vendor {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

// After a call: OK unless it was served, over TLS, by a certificate that is not `partner`'s server
// certificate (CheckPartnerServer). No verified certificate means a plaintext audit listener or a
// handshake that did not complete; then the call's status says what happened.
absl::Status CheckServedBy(grpc::ClientContext& context, const PartnerEndpoint& partner) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::OkStatus();
  absl::StatusOr<PeerCertificate> cert = PeerCertificateOf(*auth);
  if (!cert.ok()) return absl::OkStatus();
  return CheckPartnerServer(*cert, partner.name, partner.address);
}

bool IsTransient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED;
}

// A partner's error text, made safe for one report line: printable ASCII, at most 300 chars.
std::string PartnerText(const std::string& message) {
  std::string out;
  for (char c : message.substr(0, 300)) out.push_back(c >= ' ' && c <= '~' ? c : '?');
  if (message.size() > 300) out += "...";
  return out.empty() ? "(no message)" : out;
}

// The final outcome of a failed call.
void SetFailure(const grpc::Status& status, int attempts, absl::Duration call_deadline,
                PartnerOutcome* out) {
  const std::string text = PartnerText(status.error_message());
  const std::string tries = attempts == 1 ? "1 attempt" : absl::StrCat(attempts, " attempts");
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      status.error_message().find("larger than max") != std::string::npos) {
    // gRPC's own limit on what we accept (kMaxReleaseBytes), not the partner's budget.
    out->status = PartnerStatus::kFailed;
    out->reason = absl::StrCat("failed: the partner's answer exceeds the ", kMaxReleaseBytes / 1024,
                               " KiB a release may take (", text, ")");
    return;
  }
  switch (status.error_code()) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      out->status = PartnerStatus::kRefused;
      out->reason = absl::StrCat(
          "refused: the vendor's privacy budget at this partner cannot pay "
          "for this release (RESOURCE_EXHAUSTED: ",
          text, ")");
      return;
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      out->status = PartnerStatus::kRefused;
      out->reason = absl::StrCat("refused: the partner does not accept this vendor (",
                                 CodeName(status.error_code()), ": ", text, ")");
      return;
    case grpc::StatusCode::ALREADY_EXISTS:
      out->status = PartnerStatus::kRefused;
      out->reason = absl::StrCat(
          "refused: this round id was used before with other parameters (ALREADY_EXISTS: ", text,
          ")");
      return;
    case grpc::StatusCode::FAILED_PRECONDITION:
      out->status = PartnerStatus::kRefused;
      if (status.error_message().rfind("held for approval", 0) == 0) {
        // The partner's approval mode: a person there must approve the release first.
        out->reason = absl::StrCat("not yet released: ", text,
                                   "; run the round again with the same --round-id once the "
                                   "partner approved it");
      } else {
        out->reason = absl::StrCat("refused: ", text, " (FAILED_PRECONDITION)");
      }
      return;
    case grpc::StatusCode::UNAVAILABLE:
      out->status = PartnerStatus::kUnreachable;
      out->reason = absl::StrCat("unreachable after ", tries, ": ", text);
      return;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      out->status = PartnerStatus::kTimedOut;
      out->reason = absl::StrCat("no answer within the deadline (",
                                 absl::FormatDuration(call_deadline), " per call) after ", tries);
      return;
    default:
      out->status = PartnerStatus::kFailed;
      out->reason = absl::StrCat("failed: ", CodeName(status.error_code()), ": ", text);
      return;
  }
}

// A factor in [1, 1.2) for backoff jitter, so that partners retried together spread out.
double Jitter() {
  uint32_t r = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r) != 1) return 1.0;
  return 1.0 + 0.2 * (static_cast<double>(r) / 4294967296.0);
}

}  // namespace

RoundRunner::RoundRunner(std::shared_ptr<grpc::ChannelCredentials> credentials, RoundPolicy policy,
                         std::ostream* log)
    : credentials_(std::move(credentials)), policy_(policy), log_(log) {}

void RoundRunner::Log(const std::string& line) {
  if (log_ == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  *log_ << line << std::endl;
}

std::vector<PartnerOutcome> RoundRunner::Run(
    const RoundRequest& request, const std::vector<PartnerEndpoint>& partners,
    const std::function<void(const PartnerOutcome&)>& on_outcome) {
  const absl::Time round_end = absl::Now() + policy_.round_deadline;
  std::vector<PartnerOutcome> outcomes(partners.size());
  std::vector<std::thread> threads;
  threads.reserve(partners.size());
  for (std::size_t i = 0; i < partners.size(); ++i) {
    threads.emplace_back([&, i] {
      outcomes[i] = AskPartner(request, partners[i], round_end);
      const PartnerOutcome& o = outcomes[i];
      Log(absl::StrCat("round ", request.round_id, ": ", o.partner.name, ": ",
                       PartnerStatusName(o.status), o.reason.empty() ? "" : " - ", o.reason));
      if (on_outcome) {
        std::lock_guard<std::mutex> lock(mu_);
        on_outcome(o);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return outcomes;
}

PartnerOutcome RoundRunner::AskPartner(const RoundRequest& request, const PartnerEndpoint& partner,
                                       absl::Time round_end) {
  PartnerOutcome out;
  out.partner = partner;
  const fedface::v1::RunEvaluationRequest wire = ToWireRequest(request);
  const absl::Time start = absl::Now();
  absl::Duration backoff = policy_.initial_backoff;
  grpc::Status last = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "round deadline passed");
  for (int attempt = 1; attempt <= policy_.max_attempts; ++attempt) {
    const absl::Time now = absl::Now();
    if (now >= round_end) break;
    out.attempts = attempt;
    // A fresh channel per attempt: a channel that failed to connect waits out its own reconnect
    // backoff before trying again, which would turn our retry into an instant failure.
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(partner.certificate_name);
    args.SetMaxReceiveMessageSize(kMaxReleaseBytes);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(partner.address, credentials_, args);
    auto stub = fedface::v1::EvaluationService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(std::min(now + policy_.call_deadline, round_end)));
    fedface::v1::EvaluationRelease release;
    ++out.egress.requests_sent;
    out.egress.request_bytes += static_cast<int64_t>(wire.ByteSizeLong());
    last = stub->RunEvaluation(&context, wire, &release);
    out.grpc_code = CodeName(last.error_code());
    if (absl::Status s = CheckServedBy(context, partner); !s.ok()) {
      // Whoever answered is not this partner: its answer (release or error) is not B's.
      out.elapsed_ms = absl::ToInt64Milliseconds(absl::Now() - start);
      out.status = PartnerStatus::kFailed;
      out.reason = absl::StrCat("failed: wrong partner certificate: ", s.message());
      return out;
    }
    if (last.ok()) {
      ++out.egress.messages_received;
      out.egress.bytes_received += static_cast<int64_t>(release.ByteSizeLong());
      out.elapsed_ms = absl::ToInt64Milliseconds(absl::Now() - start);
      if (absl::Status s = CheckRelease(release, request); !s.ok()) {
        out.status = PartnerStatus::kFailed;
        out.reason =
            absl::StrCat("failed: the partner's release does not check out: ", s.message());
        return out;
      }
      out.status = ClassifyRelease(release, &out.reason);
      out.release = std::move(release);
      return out;
    }
    if (!IsTransient(last.error_code()) || attempt == policy_.max_attempts) break;
    const absl::Duration pause = backoff * Jitter();
    if (absl::Now() + pause >= round_end) break;
    Log(absl::StrCat("round ", request.round_id, ": ", partner.name, " (", partner.address,
                     "): attempt ", attempt, " ", CodeName(last.error_code()), ": ",
                     PartnerText(last.error_message()), "; retrying in ",
                     absl::FormatDuration(absl::Trunc(pause, absl::Milliseconds(1)))));
    absl::SleepFor(pause);
    backoff = std::min(backoff * 2, policy_.max_backoff);
  }
  out.elapsed_ms = absl::ToInt64Milliseconds(absl::Now() - start);
  if (out.grpc_code.empty()) out.grpc_code = CodeName(last.error_code());
  SetFailure(last, std::max(out.attempts, 1), policy_.call_deadline, &out);
  return out;
}

}  // namespace fedface::vendor
