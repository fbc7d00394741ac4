#include "partner_node/serve/vendor_rate_limiter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

const char* RateLimitKindName(RateLimitKind kind) {
  switch (kind) {
    case RateLimitKind::kRequests:
      return "requests";
    case RateLimitKind::kReplays:
      return "replays";
    case RateLimitKind::kOtherVersionRounds:
      return "other-version rounds";
  }
  return "?";
}

VendorRateLimiter::VendorRateLimiter(RateLimits limits, std::function<absl::Time()> now,
                                     std::ostream* log)
    : limits_(limits),
      now_(now ? std::move(now) : std::function<absl::Time()>([] { return absl::Now(); })),
      log_(log) {}

int64_t VendorRateLimiter::LimitOf(RateLimitKind kind) const {
  switch (kind) {
    case RateLimitKind::kRequests:
      return limits_.requests;
    case RateLimitKind::kReplays:
      return limits_.replays;
    case RateLimitKind::kOtherVersionRounds:
      return limits_.other_version_rounds;
  }
  return 0;
}

RateLimitDecision VendorRateLimiter::Admit(std::string_view vendor, RateLimitKind kind) {
  RateLimitDecision d;
  d.kind = kind;
  d.limit = LimitOf(kind);
  d.window_seconds = std::max<int64_t>(1, limits_.window_seconds);
  if (d.limit <= 0) return d;
  const int64_t now = absl::ToUnixSeconds(now_());
  d.window_start =
      absl::FromUnixSeconds(now - (now % d.window_seconds + d.window_seconds) % d.window_seconds);
  std::lock_guard<std::mutex> lock(mu_);
  Window& w = windows_[{std::string(vendor), kind}];
  if (w.start != d.window_start) {
    if (w.refused > 0) {
      ServeLog(log_, absl::StrCat("rate limit: vendor=", std::string(vendor), " ",
                                  RateLimitKindName(kind), ": window ",
                                  absl::FormatTime(absl::RFC3339_sec, w.start, absl::UTCTimeZone()),
                                  " refused ", w.refused, " of ", w.calls, " calls"));
    }
    w = Window{d.window_start, 0, 0};
  }
  ++w.calls;
  if (w.calls <= d.limit) return d;
  d.allowed = false;
  d.first_in_window = ++w.refused == 1;
  return d;
}

}  // namespace fedface::partner
