// A person-readable dump of release bytes, for `partner_node releases show` and
// `partner_node evaluate-release`: size, sha256 (what the ledger records when they are sent) and
// every field of the EvaluationRelease in protobuf text format, i.e. exactly what the vendor
// receives, nothing added.
#pragma once

#include <ostream>
#include <string>

namespace fedface::partner {

// Prints the dump of `bytes` (an EvaluationRelease) to `out`; bytes that do not parse are said
// to be so (and never happen for bytes the egress guard built).
void PrintReleaseText(const std::string& bytes, std::ostream& out);

}  // namespace fedface::partner
