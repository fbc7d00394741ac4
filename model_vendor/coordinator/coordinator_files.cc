#include "model_vendor/coordinator/coordinator_files.h"

#include <filesystem>

#include "core/common/files.h"
#include "model_vendor/coordinator/report_html.h"
#include "model_vendor/coordinator/report_json.h"
#include "model_vendor/coordinator/report_table.h"

namespace fedface::vendor {

absl::StatusOr<ReportFiles> WriteReportFiles(const RoundReport& report, const std::string& dir) {
  ReportFiles files;
  files.json_path = (std::filesystem::path(dir) / "report.json").string();
  files.html_path = (std::filesystem::path(dir) / "report.html").string();
  if (absl::Status s = WriteFileAtomically(files.json_path, RoundReportJson(report)); !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteFileAtomically(files.html_path, RoundReportHtml(report)); !s.ok()) {
    return s;
  }
  return files;
}

std::string RoundReportTableText(const RoundReport& report) { return RoundReportTable(report); }

}  // namespace fedface::vendor
