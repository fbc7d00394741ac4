#include "partner_node/enroll/enroll_progress.h"

#include <cstdio>
#include <string>

namespace fedface::partner {
namespace {

constexpr int kBarWidth = 30;

std::string Duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof(text), "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof(text), "%ld:%02ld", s / 60, s % 60);
  }
  return text;
}

}  // namespace

void EnrollProgressPrinter::Report(const EnrollProgress& p) {
  const bool checking = p.phase == EnrollPhase::kChecking;
  const bool phase_done = p.done >= p.total;
  const bool new_phase = !have_phase_ || p.phase != phase_;
  if (new_phase && line_open_) Finish();
  have_phase_ = true;
  phase_ = p.phase;
  const double fraction = p.total > 0 ? static_cast<double>(p.done) / p.total : 1.0;
  const double rate = p.seconds > 0 ? p.done / p.seconds : 0;
  const std::string eta = rate > 0 ? Duration((p.total - p.done) / rate) : "-:--";
  char line[256];
  if (checking) {
    std::snprintf(line, sizeof(line), "checking  %lld/%lld files %3.0f%%",
                  static_cast<long long>(p.done), static_cast<long long>(p.total), 100 * fraction);
  } else {
    std::snprintf(line, sizeof(line),
                  "enrolling %lld/%lld images %3.0f%%  %.2f images/s  ETA %s  failed %lld  "
                  "committed %lld",
                  static_cast<long long>(p.done), static_cast<long long>(p.total), 100 * fraction,
                  rate, eta.c_str(), static_cast<long long>(p.failed),
                  static_cast<long long>(p.committed));
  }
  if (terminal_) {
    const int filled = static_cast<int>(fraction * kBarWidth + 0.5);
    out_ << "\r[" << std::string(filled, '#') << std::string(kBarWidth - filled, '-') << "] "
         << line << "\x1b[K" << std::flush;
    line_open_ = true;
    return;
  }
  const absl::Time now = absl::Now();
  if (new_phase) {
    last_plain_ = now;
    printed_end_ = false;
  }
  if ((phase_done && !printed_end_) || (!phase_done && now - last_plain_ >= plain_interval_)) {
    last_plain_ = now;
    printed_end_ = phase_done;
    out_ << "enroll: " << line << "\n" << std::flush;
  }
}

void EnrollProgressPrinter::Finish() {
  if (line_open_) out_ << "\n" << std::flush;
  line_open_ = false;
}

}  // namespace fedface::partner
