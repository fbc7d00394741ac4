// report.json: the round's report for programs. Its schema is docs/report_schema.json (JSON
// Schema 2020-12), documented in docs/report.md; tests validate every report against it.
// Keys appear in a fixed order; numbers are plain JSON numbers, the 64-bit seed a decimal string.
//
// Thread safety: pure function.
#pragma once

#include <string>

#include "model_vendor/coordinator/pooled_metrics.h"

namespace fedface::vendor {

// The schema version report.json declares ("schema_version"); bump with docs/report_schema.json.
inline constexpr int kReportSchemaVersion = 3;  // 2: intervals, too_noisy; 3: bin layout 2

// The report as pretty-printed JSON text (2-space indent, trailing newline).
std::string RoundReportJson(const RoundReport& report);

}  // namespace fedface::vendor
