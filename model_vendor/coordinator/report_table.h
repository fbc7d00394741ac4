// The round's report as a plain-text table for a terminal (ASCII only): the pooled row and one
// row per partner, every withheld value marked [n] with its reason listed below the table,
// the recommended global threshold, and what each partner sent.
//
// Thread safety: pure function.
#pragma once

#include <string>

#include "model_vendor/coordinator/pooled_metrics.h"

namespace fedface::vendor {

std::string RoundReportTable(const RoundReport& report);

}  // namespace fedface::vendor
