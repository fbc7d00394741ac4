// Inline SVG charts for the HTML report: self-contained markup (no scripts, no external
// references, no fonts beyond the reader's sans-serif), sized in CSS pixels, with text labels a
// person can read without a legend lookup where possible.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/metrics/score_histogram.h"
#include "model_vendor/coordinator/pooled_metrics.h"

namespace fedface::vendor {

// Escapes &, <, >, " and ' for HTML text and attribute values.
std::string HtmlEscape(const std::string& text);

// A 95 % interval of FNMR drawn at one FMR.
struct DetWhisker {
  double fmr;
  double fnmr_low;
  double fnmr_high;
};

struct DetSeries {
  std::string name;
  std::vector<DetPoint> points;
  bool emphasised = false;  // the pooled curve: thick and dark
  // Operating points to mark on the curve, e.g. FNMR at FMR 1e-3.
  std::vector<DetPoint> markers;
  std::vector<DetWhisker> whiskers;
};

// A DET chart: false match rate on a log axis (1e-4 .. 1) against false non-match rate on a log
// axis (1e-3 .. 1); rates below the axis floor are drawn on the floor. `target_fmr`, when set,
// draws a dashed vertical line.
std::string DetChartSvg(const std::vector<DetSeries>& series, std::optional<double> target_fmr,
                        const std::string& x_label, const std::string& y_label);

// Genuine and impostor distance histograms, each normalised to shares of its own total, drawn
// as overlaid step areas over the fixed bins (the overflow bin as a last bar labelled "2+").
// `threshold`, when set, draws a vertical line labelled with its value. `compact` draws a small
// version for side-by-side display.
std::string HistogramChartSvg(const metrics::ScoreHistogram& genuine,
                              const metrics::ScoreHistogram& impostor,
                              std::optional<double> threshold, bool compact);

// Horizontal bars of bytes received per partner.
std::string EgressBarsSvg(const std::vector<std::pair<std::string, int64_t>>& bytes);

// The colour the report uses for series i (the pooled series is always near-black).
std::string SeriesColour(int index);

}  // namespace fedface::vendor
