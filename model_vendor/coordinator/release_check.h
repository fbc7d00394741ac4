// The vendor's checks of a partner's EvaluationRelease before anything in it is used: it answers
// the request that was sent, it uses the fixed bin edges, and every value is well-formed. A
// partner is trusted with its numbers, not with the report's integrity: a release that does not
// check out makes that partner "failed", never a crash or a poisoned pool.
//
// Thread safety: pure functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "fedface/v1/evaluation.pb.h"
#include "model_vendor/coordinator/round_record.h"

namespace fedface::vendor {

// OK when `release` echoes the request's round id, model version and protocol; has a known
// bin_edges_version: 1 (released histograms exactly metrics::kScoreBinCount finite non-negative
// counts, no layout-2 noise fields) or 2 (verification under differential privacy only; exactly
// metrics::kLayoutV2Bins whole, possibly negative counts; bounds c_g >= 1, even c_i >= 2 and
// positive noise scales whose epsilons c_g / scale_g + 3 floor(c_i / 2) / scale_i add up to at
// most the release's epsilon); every metric the protocol defines has a suppression set;
// released rates lie in [0, 1]; withheld histograms carry no counts.
// InvalidArgument naming the first offending field otherwise.
absl::Status CheckRelease(const fedface::v1::EvaluationRelease& release,
                          const RoundRequest& request);

// For a release that passed CheckRelease: kContributed when both histograms are released (and
// hold some mass), else kWithheld with the reason in *reason (for a person).
PartnerStatus ClassifyRelease(const fedface::v1::EvaluationRelease& release, std::string* reason);

// The public noise parameters of a layout-2 release, for people: "epsilon 80, bin layout 2: at
// most 10 mated and 6 impostor comparisons per person, noise scales 1.25 (genuine) and 0.281
// (impostor) per bin".
std::string LayoutTwoPrivacyText(const fedface::v1::PrivacyAccounting& privacy);

// A sentence for a suppression code, e.g. SUPPRESSION_COHORT_BELOW_K: "withheld by the
// partner: fewer than k subjects behind it (k-minimum rule)".
std::string SuppressionReason(fedface::v1::Suppression suppression);
// "none", "cohort_below_k", "insufficient_non_mated", "no_mated", "not_in_protocol",
// "not_measured", "not_private", "too_noisy", "unspecified" (report.json).
const char* SuppressionCode(fedface::v1::Suppression suppression);

}  // namespace fedface::vendor
