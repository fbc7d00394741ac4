#include "model_vendor/coordinator/coordinator_files.h"

#include <filesystem>

#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "model_vendor/coordinator/report_html.h"
#include "model_vendor/coordinator/report_json.h"
#include "model_vendor/coordinator/report_table.h"

namespace fedface::vendor {

absl::StatusOr<ReportFiles> WriteReportFiles(const RoundReport& report, const std::string& dir) {
  ReportFiles files;
  files.json_path = (std::filesystem::path(dir) / "report.json").string();
  files.html_path = (std::filesystem::path(dir) / "report.html").string();
  RETURN_IF_ERROR(WriteFileAtomically(files.json_path, RoundReportJson(report)));
  RETURN_IF_ERROR(WriteFileAtomically(files.html_path, RoundReportHtml(report)));
  return files;
}

std::string RoundReportTableText(const RoundReport& report) { return RoundReportTable(report); }

}  // namespace fedface::vendor
