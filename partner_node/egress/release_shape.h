// Step 5 of the egress: default deny. Only a message type the guard knows, in a shape it knows
// to be aggregate-only, may leave. Pure: the message in, OK or the reason out.
#pragma once

#include <set>
#include <string>

#include "absl/status/status.h"
#include "partner_node/egress/egress_config.h"

namespace google::protobuf {
class Message;
}

namespace fedface::partner {

// OK only when the message's full type name is in `allowlist` AND its shape is one the guard
// knows is aggregate-only: for fedface.v1.EvaluationRelease, no unknown fields, strings only
// round_id / model_version with their patterns and the ledger head's 64 lower-case hex digits,
// repeated fields only the histogram counts, every Suppression set; and every value on its grid:
// histogram counts whole numbers, rates in [0, 1] on kRateStep (the failure-to-enrol rate on
// kFailureRateStep), the targets the fixed ones, count bands bands of the ladder, throughput to
// kThroughputSignificantDigits, epsilon on kRateStep, and a withheld value carrying no number.
// Bin layouts (bin_edges_version; any other version is refused):
//   1: released histograms exactly kScoreBinCount non-negative counts, FNMR/FNIR thresholds at
//      bin edges, PrivacyAccounting fields 4-7 zero;
//   2: only a verification release under differential privacy; released histograms exactly
//      kLayoutV2Bins counts (raw noisy integers: may be negative), thresholds on kRateStep in
//      [0, kLayoutV2Top], and the whole PrivacyAccounting equal to LayoutV2Accounting(*dp, ...)
//      (release_composer.h): the bounds, epsilon and noise scales are the partner's
//      configuration, never a vendor's choice. Refused when `dp` is null (nothing to check
//      them against).
// A type in the allowlist whose shape the guard does not know is refused too. PermissionDenied
// naming the type and the offending field otherwise.
absl::Status CheckAllowlisted(const google::protobuf::Message& message,
                              const std::set<std::string>& allowlist,
                              const DifferentialPrivacyConfig* dp = nullptr);

}  // namespace fedface::partner
