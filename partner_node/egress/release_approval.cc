#include "partner_node/egress/release_approval.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {

absl::Status ApproveHeldRelease(const HeldRelease& release, HeldReleaseStore& store,
                                PrivacyBudget& budget) {
  if (release.state != HeldState::kHeld) {
    return absl::FailedPreconditionError(
        absl::StrCat("release ", release.id, " is ", HeldStateName(release.state), ", not held"));
  }
  StoredRelease stored;
  stored.vendor = release.vendor;
  stored.round_id = release.round_id;
  stored.request_sha256 = release.request_sha256;
  stored.epsilon = release.epsilon;
  stored.release_bytes = release.release_bytes;
  ASSIGN_OR_RETURN(StoredRelease charged, budget.ChargeAndStore(stored));
  if (charged.release_bytes != release.release_bytes) {
    return absl::AlreadyExistsError(absl::StrCat(
        "vendor ", release.vendor, " already received other bytes for round ", release.round_id));
  }
  return store.MarkApproved(release.id);
}

}  // namespace fedface::partner
