// The only status texts a vendor can receive: a fixed catalogue.
//
// A refusal or failure says something about the partner, so it is part of the egress like a
// release. Whatever a local step wrote into a status (paths, SQLite errors, held-release ids,
// budget arithmetic, counts, the vendor's own echoed strings), the vendor receives one of the
// catalogue's fixed texts below, chosen by the status code and a phrase of the local text, or,
// when none fits, the generic text of the code. The local text goes to the partner's log.
//
// ENSURES for every status s: VendorStatus(s).message() is a string literal of this file's
// catalogue (CatalogueTexts()), and VendorStatus(s).code() == s.code(). NEVER: a byte of
// s.message() that is not in the catalogue text.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace fedface::partner {

// The status to send the vendor for `local` (OK stays OK). The caller logs `local` when the
// texts differ.
absl::Status VendorStatus(const absl::Status& local);

// A refusal is recorded in the egress ledger like a message: type kRefusalLedgerType, and as
// bytes RefusalBytes(sent) = "<numeric code> <text>", the text as the vendor reads it (the
// grpc-message trailer, percent-decoded). The traffic audit computes the same from the wire.
inline constexpr char kRefusalLedgerType[] = "grpc.Status";
std::string RefusalBytes(const absl::Status& sent);

// A call beyond a per-vendor rate limit (partner_node/serve/vendor_rate_limiter.h) is refused
// with this one fixed text (RESOURCE_EXHAUSTED), which depends only on the vendor's own call
// counts and the time. Such refusals are recorded once per vendor, kind and window, as a row of
// type kRateLimitLedgerType whose bytes are RefusalBytes of the refusal; the traffic audit
// accepts every identical rate-limit trailer against such a row (docs/threat-model.md).
inline constexpr char kRateLimitedText[] =
    "vendor rate limit reached: too many calls of this kind in the current window; retry in the "
    "next window";
// The phrase a local status must carry to be sent as kRateLimitedText (the text carries it too,
// so the text maps to itself).
inline constexpr char kRateLimitPhrase[] = "vendor rate limit reached";
inline constexpr char kRateLimitLedgerType[] = "grpc.Status.RateLimitWindow";
// Whether `sent` (as the vendor reads it) is the rate-limit refusal.
bool IsRateLimitRefusal(const absl::Status& sent);

// Whether the reason of `local` depends on the partner's data (how many images, subjects or
// comparisons; a failure while embedding) rather than only on its configuration, its state,
// the request or the time. Such a refusal, once an evaluation has run, tells the vendor
// something about the data and is charged like a release (EgressGuard::Refuse).
bool DependsOnPartnerData(const absl::Status& local);

// Every text VendorStatus can produce (for tests and the threat model).
std::vector<std::string> CatalogueTexts();

}  // namespace fedface::partner
