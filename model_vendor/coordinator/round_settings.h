// The coordinator's settings, read from the vendor's config file (coordinator.* keys, declared
// in model_vendor/cli/vendor_config.h) and checked beyond what the schema can say: partner
// entries, quorum against the partner count, the target FMR as a number. Also the round id rules.
//
// Thread safety: value types and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/config/config_file.h"
#include "core/config/tls_credentials.h"
#include "model_vendor/coordinator/round_record.h"

namespace fedface::vendor {

// Deadlines and retries of one round.
struct RoundPolicy {
  int quorum = 2;
  absl::Duration call_deadline = absl::Seconds(900);
  absl::Duration round_deadline = absl::Seconds(3600);
  int max_attempts = 4;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(30);
};

struct CoordinatorSettings {
  std::vector<PartnerEndpoint> partners;  // config order
  TlsFiles tls;                           // the vendor's client side
  RoundPolicy policy;
  double target_fmr = 1e-3;
  uint64_t non_mated_sample_size = 0;
  std::string rounds_db;  // absolute path
};

// One coordinator.partners entry: "NAME HOST:PORT [CERTIFICATE_NAME]" (whitespace-separated).
// The certificate name defaults to HOST. Fails naming the entry and the problem.
absl::StatusOr<PartnerEndpoint> ParsePartnerEntry(const std::string& entry);

// Reads coordinator.* (server.ca_cert is the default CA; the client certificate and key have no
// default: tls.cert/key are "" when unset). Fails, naming the config file, on a
// bad partner entry, a duplicate partner name, no partners, a quorum above the partner count,
// or a target FMR that is not a number in (0, 1).
absl::StatusOr<CoordinatorSettings> LoadCoordinatorSettings(const Config& config);

// Only the rounds database path: for commands that read rounds without running one.
std::string RoundsDatabasePath(const Config& config);

// OK when id matches [A-Za-z0-9_-]{1,64} (the partner's rule for round ids).
absl::Status CheckRoundId(const std::string& id);
// A fresh id: "r" + UTC time (YYYYMMDDTHHMMSSZ) + "-" + 8 random hex digits.
std::string NewRoundId();
// The sampling seed every partner gets for round `id`: the first 8 bytes of sha256(id), so a
// re-run of the same id sends the identical request.
uint64_t RoundSeed(const std::string& id);
// The wire request of a round.
fedface::v1::RunEvaluationRequest ToWireRequest(const RoundRequest& request);

// RFC 3339 UTC with seconds, e.g. "2024-05-01T12:00:00Z".
std::string FormatUtc(absl::Time t);

}  // namespace fedface::vendor
