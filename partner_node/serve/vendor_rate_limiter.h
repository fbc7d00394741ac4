// Per-vendor rate limits on the vendor-facing port: how many calls, replays of a released round
// and rounds naming another model version (the ones that make the partner re-embed its gallery)
// one authenticated vendor identity may make per window.
//
// Windows are fixed and aligned to the epoch (window_seconds long: [k*w, (k+1)*w) in UTC). A
// count depends only on the vendor's own calls and on the clock, never on the partner's data, so
// a refusal tells the vendor nothing it did not already know (how often it called). The state is
// in memory only: a restart of the partner starts new windows (a vendor cannot restart the
// partner, and the ledger keeps every window row written before; see docs/threat-model.md).
//
// The refusal of a call beyond a limit is recorded in the egress ledger ONCE per window and kind
// (EgressGuard::RefuseRateLimited with first_in_window), not per call: a vendor that replays a
// round id in a loop cannot grow the ledger. How many calls a window refused is written to the
// partner's log when the window is over (the next call of that vendor and kind, or Stop).
//
// Thread safety: thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

#include "absl/time/time.h"

namespace fedface::partner {

enum class RateLimitKind { kRequests, kReplays, kOtherVersionRounds };
// "requests", "replays", "other-version rounds" (for the log and ledger summaries).
const char* RateLimitKindName(RateLimitKind kind);

struct RateLimits {
  int64_t window_seconds = 60;
  // Per vendor and window; 0: no limit of that kind.
  int64_t requests = 600;
  int64_t replays = 60;
  int64_t other_version_rounds = 20;
};

struct RateLimitDecision {
  bool allowed = true;
  // Refused, and the first refusal of this vendor, kind and window: record it in the ledger.
  bool first_in_window = false;
  RateLimitKind kind = RateLimitKind::kRequests;
  absl::Time window_start;
  int64_t window_seconds = 0;
  int64_t limit = 0;
};

class VendorRateLimiter {
 public:
  // `now` may be empty (absl::Now). `log` may be null.
  VendorRateLimiter(RateLimits limits, std::function<absl::Time()> now, std::ostream* log);

  // Counts one call of `kind` by `vendor` in the current window and says whether it is allowed.
  RateLimitDecision Admit(std::string_view vendor, RateLimitKind kind);

  const RateLimits& limits() const { return limits_; }

 private:
  struct Window {
    absl::Time start;
    int64_t calls = 0;
    int64_t refused = 0;
  };
  int64_t LimitOf(RateLimitKind kind) const;

  const RateLimits limits_;
  const std::function<absl::Time()> now_;
  std::ostream* const log_;
  std::mutex mu_;
  std::map<std::pair<std::string, RateLimitKind>, Window> windows_;
};

}  // namespace fedface::partner
