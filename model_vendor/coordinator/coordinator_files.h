// Writing a round's report files, shared by `model_vendor round` and `model_vendor rounds show`.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "model_vendor/coordinator/pooled_metrics.h"

namespace fedface::vendor {

struct ReportFiles {
  std::string json_path;  // DIR/report.json
  std::string html_path;  // DIR/report.html
};

// Writes DIR/report.json and DIR/report.html, each atomically (temporary file, fsync, rename).
// REQUIRES `dir` exists. Fails naming the file.
absl::StatusOr<ReportFiles> WriteReportFiles(const RoundReport& report, const std::string& dir);

// The terminal table (report_table.h).
std::string RoundReportTableText(const RoundReport& report);

}  // namespace fedface::vendor
