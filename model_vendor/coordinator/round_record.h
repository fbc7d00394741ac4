// What one evaluation round asked and what each partner answered: the record the round runner
// produces, the rounds store persists and the report is computed from. Plain values; nothing
// here is computed (pooled_metrics.h derives the metrics).
//
// Thread safety: value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fedface/v1/evaluation.pb.h"

namespace fedface::vendor {

// A partner as the vendor's config names it (coordinator.partners).
struct PartnerEndpoint {
  std::string name;              // label in reports: [A-Za-z0-9._-]{1,64}, unique
  std::string address;           // host:port of the partner's vendor-facing listener
  std::string certificate_name;  // name the partner's server certificate must carry
};

// The request every partner of a round receives. Identical on every attempt and on every re-run
// of the same round id, so that a partner's replay (keyed by round id and request hash) answers
// instead of running and charging its privacy budget again.
struct RoundRequest {
  std::string round_id;  // [A-Za-z0-9_-]{1,64}
  std::string model_version;
  fedface::v1::EvaluationProtocol protocol = fedface::v1::EVALUATION_PROTOCOL_UNSPECIFIED;
  uint64_t seed = 0;  // derived from round_id (RoundSeed)
  uint64_t non_mated_sample_size = 0;
};

// How a partner's part of a round ended.
enum class PartnerStatus {
  kContributed,  // a valid release with both histograms: part of the pooled metrics
  kWithheld,     // a valid release, but the partner's guard withheld its histograms (k-minimum)
  kRefused,      // the partner refused the request (privacy budget, permission, round id reuse)
  kUnreachable,  // no connection / UNAVAILABLE after every attempt
  kTimedOut,     // no answer within the deadline after every attempt
  kFailed,       // any other error, or a release that does not check out
};

// "contributed", "withheld", "refused", "unreachable", "timed_out", "failed" (report.json).
const char* PartnerStatusName(PartnerStatus status);
// Inverse of PartnerStatusName; nullopt for an unknown name.
std::optional<PartnerStatus> PartnerStatusFromName(const std::string& name);

// What crossed the wire between the vendor and one partner during the round, counted as the
// serialized sizes of the messages themselves (gRPC framing and TLS not included).
struct PartnerEgress {
  int64_t requests_sent = 0;
  int64_t request_bytes = 0;
  int64_t messages_received = 0;  // releases received (every attempt that got one)
  int64_t bytes_received = 0;     // their serialized bytes
};

struct PartnerOutcome {
  PartnerEndpoint partner;
  PartnerStatus status = PartnerStatus::kFailed;
  std::string reason;     // why it did not contribute, for a person; "" when contributed
  std::string grpc_code;  // of the last attempt: "OK", "UNAVAILABLE", ...
  int attempts = 0;
  int64_t elapsed_ms = 0;  // from the first attempt to the outcome
  PartnerEgress egress;
  // The release (kContributed / kWithheld), exactly as received.
  std::optional<fedface::v1::EvaluationRelease> release;
};

// One round: the request, the round's settings and every partner's outcome.
struct RoundRecord {
  RoundRequest request;
  int quorum = 1;
  double target_fmr = 1e-3;
  std::string started_at;                // RFC 3339, UTC
  std::string finished_at;               // "" while running
  int runs = 1;                          // how many times this round id was run (re-runs replay)
  std::vector<PartnerOutcome> outcomes;  // in config order
};

// Partners whose outcome is kContributed.
int ContributedCount(const RoundRecord& record);
// True when ContributedCount >= quorum.
bool QuorumMet(const RoundRecord& record);


}  // namespace fedface::vendor
