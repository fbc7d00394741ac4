#include "partner_node/serve/serve_log.h"

#include <mutex>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fedface::partner {

void ServeLog(std::ostream* log, const std::string& line) {
  if (log == nullptr) return;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  *log << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ ", absl::Now(), absl::UTCTimeZone())
       << "partner_node serve: " << line << std::endl;
}

}  // namespace fedface::partner
