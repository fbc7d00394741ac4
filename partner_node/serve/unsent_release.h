// A release built but NOT sent: for previews (`partner_node evaluate-release`) and for releases
// held for a person's approval (approval mode).
//
// The bytes come out of a complete EgressGuard (k-minimum, noise, BuildRelease, allowlist,
// deterministic serialization), so they are exactly what the guard would send; but that guard
// is wired to a throwaway privacy budget and ledger in a fresh scratch folder, removed before
// returning, so nothing is charged to the vendor's real budget and nothing is recorded in the
// real ledger (nothing was sent).
//
// The differential-privacy noise is drawn freshly from the CSPRNG on every call and kept
// nowhere: two previews of the same request differ in their noisy values, and a preview's
// noise is never the noise of a later real release. A held release keeps its bytes (and so its
// noise) in the HeldReleaseStore; approving it sends exactly those bytes.
//
// Thread safety: free function; each call uses its own scratch folder.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"

namespace fedface::partner {

// Builds the release bytes for (vendor, request, aggregate) under `config`. `scratch_parent`
// is a folder on the partner's own disk for the scratch stores (created when absent).
// Errors are those of EgressGuard::ReleaseEvaluation, or INTERNAL naming the scratch folder.
absl::StatusOr<std::string> BuildUnsentRelease(const EgressGuardConfig& config,
                                               std::string_view vendor,
                                               const fedface::v1::RunEvaluationRequest& request,
                                               const EvaluationAggregate& aggregate,
                                               const std::string& scratch_parent);

}  // namespace fedface::partner
