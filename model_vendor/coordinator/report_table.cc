#include "model_vendor/coordinator/report_table.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/wire/protocol_names.h"
#include "model_vendor/coordinator/release_check.h"

namespace fedface::vendor {
namespace {

std::string Value(const MetricCell& c) {
  if (!c.value) return "-";
  if (c.name == "throughput") return absl::StrFormat("%.0f", *c.value);
  if (c.too_noisy) return "too noisy";
  if (c.interval) {
    return absl::StrFormat("%.4f [%.3f, %.3f]", *c.value, c.interval->low, c.interval->high);
  }
  return absl::StrFormat("%.4f", *c.value);
}

bool AnyInterval(const RoundReport& r) {
  auto any = [](const std::vector<MetricCell>& cells) {
    return std::any_of(cells.begin(), cells.end(),
                       [](const MetricCell& c) { return c.interval || c.too_noisy; });
  };
  if (any(r.pooled.metrics)) return true;
  return std::any_of(r.partners.begin(), r.partners.end(),
                     [&](const PartnerRow& p) { return any(p.metrics); });
}

// What each partner's release states about its privacy (public values of the release).
std::string PrivacyLines(const RoundReport& r) {
  std::string out;
  for (const PartnerRow& p : r.partners) {
    if (!p.outcome.release) continue;
    const fedface::v1::PrivacyAccounting& a = p.outcome.release->privacy();
    absl::StrAppend(&out, "  ", p.outcome.partner.name, ": ",
                    p.layout_version == metrics::kBinLayoutV2
                        ? absl::StrCat("differential privacy, ", LayoutTwoPrivacyText(a))
                    : a.differential_privacy()
                        ? absl::StrFormat("differential privacy, epsilon %g, contribution bound "
                                          "c = %d per subject per histogram",
                                          a.epsilon(), a.contribution_bound())
                        : std::string("no differential privacy (exact histograms)"),
                    "\n");
  }
  return out;
}

std::string StateLine(const RoundReport& r) {
  const std::string counts = absl::StrCat(r.contributed, " of ", r.record.outcomes.size(),
                                          " partners contributed (quorum ", r.record.quorum, ")");
  if (r.state == "complete") return absl::StrCat("complete: ", counts);
  if (r.state == "quorum_not_met") return absl::StrCat("QUORUM NOT MET: ", counts);
  return absl::StrCat("running: ", counts);
}

// Footnotes: the same reason text gets the same number.
class Notes {
 public:
  int Mark(const std::string& who, const std::string& reason) {
    const std::string text = absl::StrCat(who, ": ", reason);
    auto it = index_.find(text);
    if (it != index_.end()) return it->second;
    lines_.push_back(text);
    index_[text] = static_cast<int>(lines_.size());
    return static_cast<int>(lines_.size());
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> lines_;
};

}  // namespace

std::string RoundReportTable(const RoundReport& report) {
  const RoundRecord& rec = report.record;
  std::string out = absl::StrCat(
      "Evaluation round ", rec.request.round_id, ": model ", rec.request.model_version, ", ",
      ProtocolName(rec.request.protocol), "\n", "State: ", StateLine(report), "\n\n");

  // Header and rows as cells, then padded to column widths.
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"", "status"};
  for (const MetricCell& c : report.pooled.metrics) header.push_back(c.label);
  header.push_back("received");
  rows.push_back(header);

  Notes notes;
  const auto cells_of = [&](const std::string& who, const std::vector<MetricCell>& metrics,
                            bool collapse_reason) {
    std::vector<std::string> cells;
    for (const MetricCell& c : metrics) {
      if (c.released) {
        cells.push_back(Value(c));
      } else if (c.too_noisy || c.suppression == "too_noisy") {
        cells.push_back("too noisy");  // the legend says what it means
      } else if (collapse_reason) {
        cells.push_back("-");
      } else {
        cells.push_back(
            absl::StrCat("-[", notes.Mark(absl::StrCat(who, " ", c.label), c.reason), "]"));
      }
    }
    return cells;
  };

  {
    const PooledRow& p = report.pooled;
    std::vector<std::string> row = {"POOLED"};
    row.push_back(
        p.available ? absl::StrCat(p.partners.size(), " partner", p.partners.size() == 1 ? "" : "s")
                    : absl::StrCat("withheld[", notes.Mark("POOLED", p.reason), "]"));
    for (const std::string& c : cells_of("POOLED", p.metrics, !p.available)) row.push_back(c);
    row.push_back("");
    rows.push_back(row);
  }
  for (const PartnerRow& pr : report.partners) {
    const PartnerOutcome& o = pr.outcome;
    std::vector<std::string> row = {o.partner.name};
    std::string status = PartnerStatusName(o.status);
    if (!o.reason.empty()) absl::StrAppend(&status, "[", notes.Mark(o.partner.name, o.reason), "]");
    row.push_back(status);
    for (const std::string& c : cells_of(o.partner.name, pr.metrics, !o.release.has_value())) {
      row.push_back(c);
    }
    row.push_back(
        absl::StrCat(o.egress.messages_received, " msg, ", o.egress.bytes_received, " B"));
    rows.push_back(row);
  }

  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line = " ";
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += " " + row[i] + std::string(width[i] - row[i].size(), ' ') + " ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }

  if (AnyInterval(report)) {
    absl::StrAppend(&out,
                    "\n[a, b]: 95 % interval from public values only (released counts, bin "
                    "edges, epsilon, c) and sampling; \"too noisy\": interval wider than ",
                    absl::StrFormat("%.2f", metrics::kTooNoisyIntervalWidth),
                    ", so no figure is given.\n");
  }
  if (const std::string privacy = PrivacyLines(report); !privacy.empty()) {
    absl::StrAppend(&out, "Privacy of the releases:\n", privacy);
  }

  const RecommendedThresholdCell& rt = report.pooled.recommended;
  const bool identification =
      rec.request.protocol == fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  const char* rate = identification ? "FPIR" : "FMR";
  const char* miss = identification ? "FNIR" : "FNMR";
  out += "\n";
  if (rt.available) {
    absl::StrAppend(&out, "Recommended global threshold for ", rate, " ",
                    absl::StrFormat("%g", rt.target_fmr),
                    ": distance <= ", absl::StrFormat("%.2f", *rt.threshold), " (pooled ", rate,
                    " ", absl::StrFormat("%.5f", rt.predicted_fmr.value_or(0)));
    if (rt.predicted_fnmr)
      absl::StrAppend(&out, ", ", miss, " ", absl::StrFormat("%.4f", *rt.predicted_fnmr));
    out += ")\n";
  } else {
    absl::StrAppend(&out, "Recommended global threshold for ", rate, " ",
                    absl::StrFormat("%g", rt.target_fmr), ": not available: ", rt.reason, "\n");
  }
  if (!notes.lines().empty()) {
    out += "\nWhy values are missing:\n";
    for (std::size_t i = 0; i < notes.lines().size(); ++i) {
      absl::StrAppend(&out, "  [", i + 1, "] ", notes.lines()[i], "\n");
    }
  }
  int64_t messages = 0, bytes = 0;
  for (const PartnerRow& pr : report.partners) {
    messages += pr.outcome.egress.messages_received;
    bytes += pr.outcome.egress.bytes_received;
  }
  absl::StrAppend(&out, "\nReceived from partners: ", messages, " message(s), ", bytes,
                  " bytes in total (aggregate releases only).\n");
  return out;
}

}  // namespace fedface::vendor
