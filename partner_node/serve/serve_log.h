// One line at a time to the node's log (stderr for `serve`), each prefixed with the UTC time and
// "partner_node serve:". Lines are for the partner's operators: they may name local files, never
// go to the vendor. Thread-safe: lines from different threads never interleave.
#pragma once

#include <ostream>
#include <string>

namespace fedface::partner {

// Writes `line` to `log` (nothing when log is null) and flushes.
void ServeLog(std::ostream* log, const std::string& line);

}  // namespace fedface::partner
