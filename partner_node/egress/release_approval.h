// A person's approval of a held release (`partner_node releases approve N`): the one place where
// a held release becomes sendable.
#pragma once

#include "absl/status/status.h"
#include "partner_node/egress/held_release_store.h"
#include "partner_node/egress/privacy_budget.h"

namespace fedface::partner {

// Charges the partner's privacy budget and stores the held bytes as the vendor's release of that
// round (PrivacyBudget::ChargeAndStore), then marks the row approved: the vendor's next retry is
// answered by EgressGuard::Admit with exactly these bytes. REQUIRES release.state == kHeld
// (FAILED_PRECONDITION otherwise). RESOURCE_EXHAUSTED when the budget cannot pay (the release
// stays held); ALREADY_EXISTS when the vendor already received other bytes for the round.
absl::Status ApproveHeldRelease(const HeldRelease& release, HeldReleaseStore& store,
                                PrivacyBudget& budget);

}  // namespace fedface::partner
