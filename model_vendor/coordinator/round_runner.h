// Runs one evaluation round: asks every partner, in parallel, for its release of the round's
// request (fedface.v1.EvaluationService/RunEvaluation), each call under a deadline, and reports
// how every partner's part ended (round_record.h).
//
// Retries: UNAVAILABLE and DEADLINE_EXCEEDED are transient; the call is repeated, on a fresh
// channel, after an exponential backoff (initial, doubled each time, capped, plus up to 20%
// jitter) until policy.max_attempts or the round deadline. Every attempt sends the IDENTICAL
// request (same round id, seed, sample size), so a partner that already answered replays its
// stored release and charges its privacy budget once. Refusals (RESOURCE_EXHAUSTED: privacy
// budget; PERMISSION_DENIED, UNAUTHENTICATED, FAILED_PRECONDITION, ALREADY_EXISTS) and other
// errors are final at once.
//
// Identity: over mutual TLS, the certificate that served each call must be the partner's own
// server certificate (serverAuth, CN = the name in coordinator.partners; peer_identity.h),
// besides gRPC's host-name check of the address. Otherwise the answer is discarded, whatever it
// was, and the partner's outcome is `failed` at once, naming the partner and the certificate.
//
// What a partner sends is untrusted: a release is size-limited by the channel (kMaxReleaseBytes),
// checked by CheckRelease, and counted (serialized bytes) in the partner's egress summary.
//
// Thread safety: Run may be called from one thread at a time per RoundRunner; it starts one
// thread per partner and joins them all before returning. `on_outcome` and the log are called
// under an internal mutex.
#pragma once

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "model_vendor/coordinator/round_record.h"
#include "model_vendor/coordinator/round_settings.h"

namespace fedface::vendor {

// A release is a few kilobytes (two histograms of 201 doubles); anything far larger is refused
// by gRPC before it is parsed.
inline constexpr int kMaxReleaseBytes = 256 << 10;

class RoundRunner {
 public:
  // `credentials`: the vendor's mutual-TLS client credentials (MutualTlsChannelCredentials), or
  // insecure ones for a plaintext audit listener. `log` (may be null) gets one line per attempt
  // that failed and per outcome.
  RoundRunner(std::shared_ptr<grpc::ChannelCredentials> credentials, RoundPolicy policy,
              std::ostream* log);

  // Asks every partner and returns one outcome per partner, in the order given. Never fails as
  // a whole: every problem is some partner's outcome. `on_outcome` (may be empty) is called as
  // each partner's outcome is known, e.g. to persist it.
  std::vector<PartnerOutcome> Run(const RoundRequest& request,
                                  const std::vector<PartnerEndpoint>& partners,
                                  const std::function<void(const PartnerOutcome&)>& on_outcome);

 private:
  PartnerOutcome AskPartner(const RoundRequest& request, const PartnerEndpoint& partner,
                            absl::Time round_end);
  void Log(const std::string& line);

  std::shared_ptr<grpc::ChannelCredentials> credentials_;
  RoundPolicy policy_;
  std::ostream* log_;
  std::mutex mu_;
};

}  // namespace fedface::vendor
