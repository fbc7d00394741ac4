#include "model_vendor/coordinator/report_html.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model_vendor/coordinator/release_check.h"
#include "model_vendor/coordinator/svg_charts.h"

namespace fedface::vendor {
namespace {

constexpr char kStyle[] = R"css(
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; color: #222; margin: 0;
       background: #fff; line-height: 1.45; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 2px solid #e3e3e3; padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
.subtitle { color: #555; margin: 0 0 18px; }
.glance { border: 2px solid #2b6cb0; border-radius: 8px; padding: 14px 18px; background: #f3f8fd; }
.glance.bad { border-color: #c05621; background: #fff7f0; }
.big { font-size: 30px; font-weight: bold; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #d5d5d5; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f1f1f1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.pooled td { background: #f3f8fd; font-weight: bold; }
.withheld { color: #8a4b08; font-style: italic; white-space: nowrap; }
.small { font-size: 12px; color: #666; font-weight: normal; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
         color: #fff; white-space: nowrap; }
.contributed { background: #2f855a; } .withheld-badge { background: #b7791f; }
.refused { background: #c05621; } .unreachable, .timed_out, .failed { background: #9b2c2c; }
.notes li { margin-bottom: 3px; }
.explain { color: #444; max-width: 820px; }
.chart { display: block; margin: 8px 0; }
.chart .tick { font-size: 11px; fill: #555; } .chart .axis { font-size: 13px; fill: #333; }
.chart .legend { font-size: 12px; fill: #222; }
.grid { display: flex; flex-wrap: wrap; gap: 10px 24px; }
.grid figure { margin: 0; } figcaption { font-size: 13px; font-weight: bold; }
dl.glossary dt { font-weight: bold; margin-top: 8px; } dl.glossary dd { margin-left: 18px; }
footer { margin-top: 40px; font-size: 12px; color: #777; }
)css";

std::string E(const std::string& s) { return HtmlEscape(s); }

std::string Pct(double v) {
  if (v == 0) return "0%";
  const double p = v * 100;
  if (p >= 10) return absl::StrFormat("%.1f%%", p);
  if (p >= 0.1) return absl::StrFormat("%.2f%%", p);
  return absl::StrFormat("%.3f%%", p);
}

// "1 in 1,000" for 1e-3; a plain number otherwise.
std::string OneIn(double rate) {
  const double n = 1 / rate;
  const double r = std::round(n);
  if (std::fabs(n - r) > 1e-6 * n) return absl::StrFormat("%g", rate);
  std::string digits = absl::StrFormat("%.0f", r);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return absl::StrCat("1 in ", digits);
}

bool IsIdentification(const RoundReport& r) {
  return r.record.request.protocol == fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
}

std::string CellNumber(const MetricCell& c, double v) {
  if (c.name == "throughput") return absl::StrFormat("%.0f", v);
  if (c.name == "roc_auc") return absl::StrFormat("%.4f", v);
  return Pct(v);
}

std::string CellValue(const MetricCell& c) {
  if (c.too_noisy) {
    return absl::StrCat("<b>too noisy</b><br><span class=\"small\">",
                        c.interval ? absl::StrCat("95 % interval ", CellNumber(c, c.interval->low),
                                                  " to ", CellNumber(c, c.interval->high))
                                   : std::string("no interval"),
                        "</span>");
  }
  std::string out = CellNumber(c, *c.value);
  if (c.interval) {
    absl::StrAppend(&out, "<br><span class=\"small\">95 % interval ",
                    CellNumber(c, c.interval->low), " to ", CellNumber(c, c.interval->high),
                    "</span>");
  }
  return out;
}

std::string StatusBadge(PartnerStatus s) {
  const std::string name = PartnerStatusName(s);
  const std::string css = s == PartnerStatus::kWithheld ? "withheld-badge" : name;
  std::string label = name;
  if (s == PartnerStatus::kTimedOut) label = "timed out";
  return absl::StrCat("<span class=\"badge ", css, "\">", E(label), "</span>");
}

std::string StatusSentence(const PartnerOutcome& o) {
  switch (o.status) {
    case PartnerStatus::kContributed:
      return "Took part: its results are included in the pooled figures.";
    case PartnerStatus::kWithheld:
      return absl::StrCat(
          "Answered, but its privacy rules withheld its results, so it is not "
          "in the pooled figures. Reason: ",
          E(o.reason));
    case PartnerStatus::kRefused:
      return absl::StrCat("Declined the request. ", E(o.reason));
    case PartnerStatus::kUnreachable:
      return absl::StrCat("Could not be reached. ", E(o.reason));
    case PartnerStatus::kTimedOut:
      return absl::StrCat("Did not answer in time. ", E(o.reason));
    case PartnerStatus::kFailed:
      return absl::StrCat("Something went wrong. ", E(o.reason));
  }
  return E(o.reason);
}

// Footnotes for withheld values: one number per distinct reason.
class Notes {
 public:
  int Mark(const std::string& reason) {
    auto it = index_.find(reason);
    if (it != index_.end()) return it->second;
    lines_.push_back(reason);
    return index_[reason] = static_cast<int>(lines_.size());
  }
  std::string Html() const {
    if (lines_.empty()) return "";
    std::string out = "<ol class=\"notes\">\n";
    for (const std::string& l : lines_) absl::StrAppend(&out, "<li>", E(l), "</li>\n");
    return out + "</ol>\n";
  }

 private:
  std::map<std::string, int> index_;
  std::vector<std::string> lines_;
};

std::string MetricCellHtml(const MetricCell& c, Notes* notes) {
  if (!c.released) {
    return absl::StrCat("<td class=\"withheld\">withheld <sup>", notes->Mark(c.reason),
                        "</sup></td>");
  }
  std::string extra;
  if (c.threshold && !c.too_noisy &&
      (c.name == "fnmr_at_fmr" || c.name == "fnir_at_fpir" || c.name == "eer")) {
    extra = absl::StrCat("<br><span class=\"small\">at distance ",
                         absl::StrFormat("%.2f", *c.threshold), "</span>");
  }
  return absl::StrCat("<td class=\"num\">", CellValue(c), extra, "</td>");
}

std::string Glance(const RoundReport& r) {
  const bool ident = IsIdentification(r);
  const RoundRecord& rec = r.record;
  const RecommendedThresholdCell& rt = r.pooled.recommended;
  std::string out = absl::StrCat("<section class=\"glance", r.pooled.available ? "" : " bad",
                                 "\">\n<p><b>", r.contributed, " of ", rec.outcomes.size(),
                                 " partners</b> contributed results to this round (at least ",
                                 rec.quorum, " were needed). ");
  if (r.state == "complete") {
    out += "The round is <b>complete</b>.</p>\n";
  } else if (r.state == "quorum_not_met") {
    out +=
        "<b>Too few partners contributed</b>, so no pooled figures are given: a pooled "
        "result from fewer partners than agreed would not represent the industry.</p>\n";
  } else {
    out +=
        "The round is <b>still running or was interrupted</b>; run it again with the same "
        "round id to finish it (partners that already answered send the same result again "
        "at no privacy cost).</p>\n";
  }
  if (rt.available) {
    absl::StrAppend(
        &out, "<p>Recommended global threshold: <span class=\"big\">",
        absl::StrFormat("%.2f", *rt.threshold), "</span></p>\n<p>",
        ident ? "A search returns a person from the gallery only when the distance between the "
                "two faces is at most this value. "
              : "Two photos are declared to show the same person when the distance between "
                "the two faces is at most this value. ",
        "It is calibrated on the pooled comparisons of all contributing partners so that about <b>",
        OneIn(rt.target_fmr), "</b> ",
        ident ? "searches for people who are not in the gallery wrongly return someone"
              : "comparisons of two different people are wrongly accepted as a match",
        " (the pooled data shows ", Pct(rt.predicted_fmr.value_or(0)), ").");
    if (rt.predicted_fnmr) {
      absl::StrAppend(&out, " At this threshold, <b>", Pct(*rt.predicted_fnmr), "</b> of ",
                      ident ? "searches for people who are in the gallery miss them"
                            : "comparisons of two photos of the same person are wrongly "
                              "rejected",
                      ".");
    }
    out += "</p>\n";
  } else {
    absl::StrAppend(&out, "<p>No global threshold can be recommended: ", E(rt.reason), ".</p>\n");
  }
  out += "</section>\n";
  return out;
}

std::string ParticipationSection(const RoundReport& r) {
  std::string out =
      "<h2>Who took part</h2>\n<p class=\"explain\">Every partner was asked at the same time. A "
      "partner that could not be reached or did not answer in time was asked again after a "
      "pause, with the same round id, so that it never spends its privacy budget twice for one "
      "round.</p>\n<table>\n<tr><th>Partner</th><th>Status</th><th>What happened</th>"
      "<th>Attempts</th><th>Time</th></tr>\n";
  for (const PartnerRow& row : r.partners) {
    const PartnerOutcome& o = row.outcome;
    absl::StrAppend(
        &out, "<tr><td><b>", E(o.partner.name), "</b><br><span class=\"small\">",
        E(o.partner.address), "</span></td><td>", StatusBadge(o.status), "</td><td>",
        StatusSentence(o), "</td><td class=\"num\">", o.attempts, "</td><td class=\"num\">",
        absl::StrFormat("%.1f s", static_cast<double>(o.elapsed_ms) / 1000.0), "</td></tr>\n");
  }
  return out + "</table>\n";
}

std::string ResultsSection(const RoundReport& r) {
  const bool ident = IsIdentification(r);
  Notes notes;
  std::string out = absl::StrCat(
      "<h2>Results</h2>\n<p class=\"explain\">The first row pools all contributing partners: "
      "their score histograms are added together, which gives exactly the result of one "
      "evaluation over all their comparisons, and the rates are computed from that sum. The other "
      "rows are each partner's own figures as its privacy rules released them. ",
      ident ? "FNIR is the share of searches for enrolled people that miss them; FPIR the share "
              "of searches for people who are not enrolled that return someone anyway; lower is "
              "better for both, higher is better for the rank-1 rate."
            : "FNMR is the share of genuine attempts (same person) that are wrongly rejected when "
              "the threshold is set so that the false match rate (FMR, different people wrongly "
              "accepted) is at most the target; lower is better. EER is where both error rates "
              "are equal; ROC AUC is 1 for perfect separation.",
      " A value shown as <i>withheld</i> was not released or cannot be computed; the numbered "
      "notes say why.</p>\n<table>\n<tr><th>Partner</th>");
  for (const MetricCell& c : r.pooled.metrics) absl::StrAppend(&out, "<th>", E(c.label), "</th>");
  out += "</tr>\n";
  absl::StrAppend(
      &out, "<tr class=\"pooled\"><td>All partners (pooled)<br><span class=\"small\">",
      r.pooled.available
          ? absl::StrCat(r.pooled.partners.size(), " partner(s), ",
                         absl::StrFormat("%.0f", r.pooled.genuine_total), " genuine and ",
                         absl::StrFormat("%.0f", r.pooled.impostor_total), " impostor comparisons")
          : "not available",
      "</span></td>");
  for (const MetricCell& c : r.pooled.metrics) out += MetricCellHtml(c, &notes);
  out += "</tr>\n";
  for (const PartnerRow& row : r.partners) {
    absl::StrAppend(&out, "<tr><td>", E(row.outcome.partner.name), " ",
                    StatusBadge(row.outcome.status), "</td>");
    for (const MetricCell& c : row.metrics) out += MetricCellHtml(c, &notes);
    out += "</tr>\n";
  }
  out += "</table>\n";
  int noisy = 0;
  for (const PartnerRow& row : r.partners) {
    if (row.outcome.status == PartnerStatus::kContributed && row.outcome.release &&
        row.outcome.release->privacy().differential_privacy()) {
      ++noisy;
    }
  }
  if (noisy > 0 && r.pooled.available) {
    absl::StrAppend(&out, "<p class=\"explain\"><b>Note:</b> ", noisy, " of the ",
                    r.pooled.partners.size(),
                    " pooled partners added differential-privacy noise to their histograms. "
                    "The noise is small per bin but never negative once released, so with few "
                    "comparisons it can add false matches at short distances and make the pooled "
                    "rates at the strictest targets look worse than they are.</p>\n");
  }
  if (!r.pooled.recommended.available && r.pooled.available) {
    notes.Mark(absl::StrCat("Recommended threshold: ", r.pooled.recommended.reason));
  }
  out += notes.Html();
  return out;
}

std::string DetSection(const RoundReport& r) {
  const bool ident = IsIdentification(r);
  std::vector<DetSeries> series;
  for (const PartnerRow& row : r.partners) {
    if (row.det.empty()) continue;
    series.push_back({row.outcome.partner.name, row.det, false, {}, {}});
  }
  if (r.pooled.available && !r.pooled.det.empty()) {
    DetSeries pooled{"all partners (pooled)", r.pooled.det, true, {}, {}};
    for (const MetricCell& c : r.pooled.metrics) {
      if (c.released && c.threshold && c.achieved_rate &&
          (c.name == "fnmr_at_fmr" || c.name == "fnir_at_fpir")) {
        // A too noisy figure gets its whisker only: no point is drawn as if measured.
        if (!c.too_noisy) pooled.markers.push_back({*c.threshold, *c.achieved_rate, *c.value});
        if (c.interval) {
          pooled.whiskers.push_back({*c.achieved_rate, c.interval->low, c.interval->high});
        }
      }
    }
    series.push_back(std::move(pooled));
  }
  std::string out = absl::StrCat(
      "<h2>Error trade-off (DET curves)</h2>\n<p class=\"explain\">Each line shows, for every "
      "possible threshold, how many ",
      ident ? "searches for people who are not enrolled return someone (left to right) and how "
              "many searches for enrolled people miss them (bottom to top)"
            : "impostor attempts are wrongly accepted (left to right) and how many genuine "
              "attempts are wrongly rejected (bottom to top)",
      ". A line closer to the bottom-left corner is better. Both axes are logarithmic: each grid "
      "line is ten times the previous one. The thick dark line pools all contributing partners; "
      "circles mark the pooled figures of the results table and the vertical whiskers their "
      "95 % intervals (a whisker without a circle: too noisy to give a figure); the dashed line is "
      "the target "
      "used for the recommended threshold. Rates below the lowest grid line are drawn on "
      "it.</p>\n");
  if (series.empty()) {
    out += "<p><i>No partner released score histograms, so there is no curve to draw.</i></p>\n";
    return out;
  }
  out += DetChartSvg(series, r.record.target_fmr,
                     ident ? "false positive identification rate (FPIR)"
                           : "false match rate (FMR): impostors accepted",
                     ident ? "false negative identification rate (FNIR)"
                           : "false non-match rate (FNMR): genuine users rejected");
  return out;
}

// Layout-2 releases are not drawn as 0.01-wide bins (they have 21 bins of unequal width).
constexpr char kLayoutTwoNote[] =
    "<p class=\"small\">released over bin layout 2 (21 bins: 19 of equal width over [0.45, "
    "0.79) plus the two open ends); the counts are in report.json, the curves above come from "
    "them</p>\n";

std::string HistogramSection(const RoundReport& r) {
  std::string out =
      "<h2>Score distributions</h2>\n<p class=\"explain\">How far apart the faces were. Green: "
      "comparisons of two photos of the same person; red: of two different people. Each colour "
      "is scaled to its own total, so the shapes compare even when one side has many more "
      "comparisons. The less the two areas overlap, the better the model tells people apart; "
      "the dashed line is the recommended threshold. The values come from fixed bins of width "
      "0.01 that every partner uses, which is what makes adding them up possible.</p>\n";
  const std::optional<double> threshold = r.pooled.recommended.threshold;
  if (r.pooled.available && r.pooled.histograms) {
    out += "<h3>All partners (pooled)</h3>\n";
    out += HistogramChartSvg(r.pooled.histograms->genuine, r.pooled.histograms->impostor, threshold,
                             false);
  } else if (r.pooled.available && r.pooled.layout_two) {
    out += "<h3>All partners (pooled)</h3>\n";
    out += kLayoutTwoNote;
  }
  out += "<div class=\"grid\">\n";
  for (const PartnerRow& row : r.partners) {
    absl::StrAppend(&out, "<figure><figcaption>", E(row.outcome.partner.name), "</figcaption>\n");
    if (row.histograms) {
      out += HistogramChartSvg(row.histograms->genuine, row.histograms->impostor, threshold, true);
    } else if (row.layout_two) {
      out += kLayoutTwoNote;
    } else {
      out += "<p class=\"small\">no histograms released</p>\n";
    }
    out += "</figure>\n";
  }
  return out + "</div>\n";
}

std::string EgressSection(const RoundReport& r) {
  std::string out =
      "<h2>What the partners sent (egress summary)</h2>\n<p class=\"explain\">This is "
      "<b>everything</b> the vendor received from each partner in this round, counted message "
      "by message as the bytes of each message. Each message is one aggregate release built by "
      "the partner's egress guard: counts in wide bands, error rates, and two histograms of "
      "201 numbers. No photo, face, name, file or per-person value is among them; each partner "
      "also keeps its own tamper-evident log of every message it sent. The vendor's requests "
      "are listed too: they carry only the round id, the model version, the protocol and a "
      "sampling seed.</p>\n<table>\n<tr><th>Partner</th><th>Requests sent</th><th>Request "
      "bytes</th><th>Messages received</th><th>Bytes received</th></tr>\n";
  int64_t t_req = 0, t_req_b = 0, t_msg = 0, t_b = 0;
  std::vector<std::pair<std::string, int64_t>> bars;
  for (const PartnerRow& row : r.partners) {
    const PartnerEgress& e = row.outcome.egress;
    t_req += e.requests_sent;
    t_req_b += e.request_bytes;
    t_msg += e.messages_received;
    t_b += e.bytes_received;
    bars.push_back({row.outcome.partner.name, e.bytes_received});
    absl::StrAppend(&out, "<tr><td>", E(row.outcome.partner.name), "</td><td class=\"num\">",
                    e.requests_sent, "</td><td class=\"num\">", e.request_bytes,
                    "</td><td class=\"num\">", e.messages_received, "</td><td class=\"num\">",
                    e.bytes_received, "</td></tr>\n");
  }
  absl::StrAppend(&out, "<tr class=\"pooled\"><td>Total</td><td class=\"num\">", t_req,
                  "</td><td class=\"num\">", t_req_b, "</td><td class=\"num\">", t_msg,
                  "</td><td class=\"num\">", t_b, "</td></tr>\n</table>\n");
  out += EgressBarsSvg(bars);
  return out;
}

std::string BandText(const fedface::v1::CountBand& b) {
  if (b.suppression() != fedface::v1::SUPPRESSION_NONE) {
    return "<span class=\"withheld\">withheld</span>";
  }
  if (b.below() <= b.at_least()) return absl::StrCat(b.at_least(), " or more");
  return absl::StrCat(b.at_least(), " to ", b.below() - 1);
}

std::string PrivacySection(const RoundReport& r) {
  std::string out =
      "<h2>Privacy protections applied by each partner</h2>\n<p class=\"explain\">Partners "
      "never report exact numbers of people or photos, only a band (for example \"100 to "
      "199\"). A partner releases nothing about a group of fewer than <i>k</i> people (its "
      "k-minimum). With <i>differential privacy</i> on, a partner adds calibrated random noise "
      "to its histograms before sending them, limits how much any one person can count, and "
      "charges the noise level (epsilon) to a privacy budget it keeps for the vendor; smaller "
      "epsilon means stronger protection.</p>\n<table>\n<tr><th>Partner</th><th>People</th>"
      "<th>Photos</th><th>Genuine comparisons</th><th>Impostor comparisons</th>"
      "<th>Differential privacy</th></tr>\n";
  for (const PartnerRow& row : r.partners) {
    const PartnerOutcome& o = row.outcome;
    absl::StrAppend(&out, "<tr><td>", E(o.partner.name), "</td>");
    if (!o.release) {
      out += "<td colspan=\"5\" class=\"small\">no release received</td></tr>\n";
      continue;
    }
    const fedface::v1::Counts& c = o.release->counts();
    const fedface::v1::PrivacyAccounting& p = o.release->privacy();
    absl::StrAppend(&out, "<td>", BandText(c.subjects()), "</td><td>", BandText(c.images()),
                    "</td><td>", BandText(c.mated_comparisons()), "</td><td>",
                    BandText(c.non_mated_comparisons()), "</td><td>",
                    o.release->bin_edges_version() == metrics::kBinLayoutV2
                        ? absl::StrCat("on: ", LayoutTwoPrivacyText(p))
                    : p.differential_privacy()
                        ? absl::StrFormat("on: epsilon %.3g, at most %u comparisons per person",
                                          p.epsilon(), p.contribution_bound())
                        : std::string("off: exact histograms"),
                    "</td></tr>\n");
  }
  return out + "</table>\n";
}

constexpr char kGlossary[] = R"html(
<h2>Glossary</h2>
<dl class="glossary">
<dt>Distance</dt><dd>The model turns each face into a list of 128 numbers; the distance between
two such lists says how alike the faces are. Lower means more alike.</dd>
<dt>Threshold</dt><dd>The distance below which two faces are declared the same person.</dd>
<dt>Genuine / impostor comparison</dt><dd>A comparison of two photos of the same person /
of two different people.</dd>
<dt>FMR (false match rate)</dt><dd>Share of impostor comparisons wrongly accepted.</dd>
<dt>FNMR (false non-match rate)</dt><dd>Share of genuine comparisons wrongly rejected.</dd>
<dt>EER (equal error rate)</dt><dd>The error rate at the threshold where FMR and FNMR are
equal; a single-number summary.</dd>
<dt>ROC AUC</dt><dd>The chance that a random impostor pair is further apart than a random
genuine pair: 1 is perfect, 0.5 is guessing.</dd>
<dt>Rank-1 identification rate</dt><dd>Share of searches for enrolled people where the right
person comes first.</dd>
<dt>FNIR / FPIR</dt><dd>In searches: share of enrolled people missed / share of searches for
people who are not enrolled that return someone anyway.</dd>
<dt>FTE (failure to enrol)</dt><dd>Share of photos in which no usable face was found.</dd>
<dt>DET curve</dt><dd>Detection error trade-off: both error rates for every threshold.</dd>
<dt>Quorum</dt><dd>The number of partners that must contribute for pooled figures to be
published.</dd>
<dt>k-minimum</dt><dd>A partner's rule to release nothing about fewer than k people.</dd>
<dt>Differential privacy, epsilon</dt><dd>Calibrated random noise that hides whether any one
person took part; epsilon measures how much is revealed (smaller is more private).</dd>
</dl>
)html";

}  // namespace

std::string RoundReportHtml(const RoundReport& r) {
  const RoundRecord& rec = r.record;
  const std::string title = absl::StrCat("Evaluation round ", rec.request.round_id, " - model ",
                                         rec.request.model_version);
  std::string out = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n<title>",
      E(title), "</title>\n<style>", kStyle, "</style>\n</head>\n<body>\n<main>\n",
      "<h1>Face matching accuracy across partners</h1>\n<p class=\"subtitle\">Round <b>",
      E(rec.request.round_id), "</b> &middot; model <b>", E(rec.request.model_version),
      "</b> &middot; ",
      IsIdentification(r) ? "identification (searching a face among many)"
                          : "verification (comparing two photos)",
      " &middot; started ", E(rec.started_at),
      rec.finished_at.empty() ? "" : absl::StrCat(", finished ", E(rec.finished_at)),
      rec.runs > 1 ? absl::StrCat(" &middot; run ", rec.runs, " times") : "", "</p>\n",
      "<p class=\"explain\">The vendor asked each partner to test the model on the partner's "
      "own photos, on the partner's own machines. No photo left any partner: each sent back "
      "only summary figures, and this report combines them.</p>\n");
  out += Glance(r);
  out += ParticipationSection(r);
  out += ResultsSection(r);
  out += DetSection(r);
  out += HistogramSection(r);
  out += EgressSection(r);
  out += PrivacySection(r);
  out += kGlossary;
  absl::StrAppend(&out, "<footer>Generated by model_vendor ", FEDFACE_VERSION,
                  ". Machine-readable version: report.json (schema docs/report_schema.json). "
                  "Score bins: edges version ",
                  metrics::kScoreBinEdgesVersion, ", ", metrics::kScoreBinCount,
                  " bins.</footer>\n</main>\n</body>\n</html>\n");
  return out;
}

}  // namespace fedface::vendor
