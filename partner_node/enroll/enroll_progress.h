// How `partner_node enroll` shows a run's progress: on a terminal, one status line redrawn in
// place with a bar, the rate and the time left; otherwise (a log file, a pipe) a plain line every
// few seconds and at the end of each phase, so logs stay readable.
#pragma once

#include <ostream>

#include "absl/time/time.h"
#include "partner_node/enroll/enroller.h"

namespace fedface::partner {

class EnrollProgressPrinter {
 public:
  // `terminal`: redraw in place (use isatty on the stream's descriptor). `out` must outlive this.
  EnrollProgressPrinter(std::ostream& out, bool terminal,
                        absl::Duration plain_interval = absl::Seconds(5))
      : out_(out), terminal_(terminal), plain_interval_(plain_interval) {}

  // An Enroller progress callback. Not thread-safe (the Enroller calls it from one thread at a
  // time).
  void Report(const EnrollProgress& progress);

  // Ends the status line on a terminal (call before printing anything else).
  void Finish();

 private:
  std::ostream& out_;
  const bool terminal_;
  const absl::Duration plain_interval_;
  bool line_open_ = false;
  bool have_phase_ = false;
  EnrollPhase phase_ = EnrollPhase::kChecking;
  absl::Time last_plain_ = absl::InfinitePast();
  bool printed_end_ = false;  // the phase's final line was printed
};

}  // namespace fedface::partner
