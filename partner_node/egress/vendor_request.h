// Step 1 of the egress: what the vendor asks for, checked before anything is computed.
// Every check depends on the request and the partner's configuration only, never on its data.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_config.h"

namespace fedface::partner {

// round_id matches [A-Za-z0-9_-]{1,64}, model_version [0-9A-Za-z.+-]{1,64}, protocol is
// verification or identification, no unknown fields. InvalidArgument naming the field otherwise.
absl::Status CheckRequest(const fedface::v1::RunEvaluationRequest& request);
// The patterns of the two vendor strings a release echoes (the shape check uses them too).
bool IsValidRoundId(std::string_view round_id);            // [A-Za-z0-9_-]{1,64}
bool IsValidModelVersion(std::string_view model_version);  // [0-9A-Za-z.+-]{1,64}
// The vendor identity: 1..256 printable ASCII characters.
absl::Status CheckVendorIdentity(std::string_view vendor);
// sha256 hex of the request's deterministic serialization.
std::string RequestHash(const fedface::v1::RunEvaluationRequest& request);

// Identification under differential privacy: refused. One gallery subject takes part in every
// other subject's search (as a candidate), so adding or removing one person can move many
// counts of the identification histograms (a crafted "hub" embedding near everyone moves all
// non-mated best distances); the contribution bound per probe does not cover that, and a release
// must never claim a guarantee it does not give. FAILED_PRECONDITION with this text when DP is on
// and the protocol is identification; OK otherwise.
inline constexpr char kIdentificationUnderDpRefused[] =
    "identification is not released while differential privacy is on: its noise would not "
    "cover one subject's influence on other subjects' searches";
absl::Status CheckProtocolAllowed(const fedface::v1::RunEvaluationRequest& request,
                                  const DifferentialPrivacyConfig& dp);

// "verification model=1.0.0 seed=7 non_mated_sample=0": the request's own values, for logs,
// held releases and ledger summaries (vendor-side data only).
std::string RoundSummary(const fedface::v1::RunEvaluationRequest& request);

}  // namespace fedface::partner
