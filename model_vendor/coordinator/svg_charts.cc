#include "model_vendor/coordinator/svg_charts.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedface::vendor {
namespace {

std::string Num(double v) { return absl::StrFormat("%.1f", v); }

// "1 in 1,000" style labels for decades of a rate.
std::string OneIn(int decade) {
  switch (decade) {
    case 0:
      return "all";
    case -1:
      return "1 in 10";
    case -2:
      return "1 in 100";
    case -3:
      return "1 in 1,000";
    case -4:
      return "1 in 10,000";
    default:
      return absl::StrCat("1e", decade);
  }
}

std::string Percent(int decade) {
  switch (decade) {
    case 0:
      return "100%";
    case -1:
      return "10%";
    case -2:
      return "1%";
    case -3:
      return "0.1%";
    default:
      return absl::StrCat("1e", decade);
  }
}

}  // namespace

std::string HtmlEscape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string SeriesColour(int index) {
  static const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                   "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
  return kPalette[static_cast<std::size_t>(index) % (sizeof kPalette / sizeof kPalette[0])];
}

std::string DetChartSvg(const std::vector<DetSeries>& series, std::optional<double> target_fmr,
                        const std::string& x_label, const std::string& y_label) {
  constexpr double kW = 760, kH = 470, kLeft = 80, kRight = 190, kTop = 20, kBottom = 70;
  constexpr double kXMin = -4, kXMax = 0, kYMin = -3, kYMax = 0;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  const auto x = [&](double fmr) {
    const double l = std::log10(std::max(fmr, std::pow(10.0, kXMin)));
    return kLeft + (std::min(l, kXMax) - kXMin) / (kXMax - kXMin) * pw;
  };
  const auto y = [&](double fnmr) {
    const double l = std::log10(std::max(fnmr, std::pow(10.0, kYMin)));
    return kTop + (kYMax - std::min(l, kYMax)) / (kYMax - kYMin) * ph;
  };
  std::string svg = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"", kW, "\" height=\"", kH,
      "\" viewBox=\"0 0 ", kW, " ", kH, "\" role=\"img\" aria-label=\"DET curves\">\n",
      "<rect x=\"", kLeft, "\" y=\"", kTop, "\" width=\"", pw, "\" height=\"", ph,
      "\" fill=\"#fbfbfb\" stroke=\"#999\"/>\n");
  for (int d = static_cast<int>(kXMin); d <= static_cast<int>(kXMax); ++d) {
    const double px = x(std::pow(10.0, d));
    absl::StrAppend(&svg, "<line x1=\"", Num(px), "\" y1=\"", kTop, "\" x2=\"", Num(px), "\" y2=\"",
                    kTop + ph, "\" stroke=\"#ddd\"/>\n", "<text x=\"", Num(px), "\" y=\"",
                    kTop + ph + 18, "\" text-anchor=\"middle\" class=\"tick\">",
                    HtmlEscape(OneIn(d)), "</text>\n");
  }
  for (int d = static_cast<int>(kYMin); d <= static_cast<int>(kYMax); ++d) {
    const double py = y(std::pow(10.0, d));
    absl::StrAppend(&svg, "<line x1=\"", kLeft, "\" y1=\"", Num(py), "\" x2=\"", kLeft + pw,
                    "\" y2=\"", Num(py), "\" stroke=\"#ddd\"/>\n", "<text x=\"", kLeft - 8,
                    "\" y=\"", Num(py + 4), "\" text-anchor=\"end\" class=\"tick\">", Percent(d),
                    "</text>\n");
  }
  absl::StrAppend(&svg, "<text x=\"", Num(kLeft + pw / 2), "\" y=\"", kH - 28,
                  "\" text-anchor=\"middle\" class=\"axis\">", HtmlEscape(x_label), "</text>\n",
                  "<text x=\"", 18, "\" y=\"", Num(kTop + ph / 2),
                  "\" text-anchor=\"middle\" class=\"axis\" transform=\"rotate(-90 18 ",
                  Num(kTop + ph / 2), ")\">", HtmlEscape(y_label), "</text>\n");
  if (target_fmr) {
    const double px = x(*target_fmr);
    absl::StrAppend(&svg, "<line x1=\"", Num(px), "\" y1=\"", kTop, "\" x2=\"", Num(px), "\" y2=\"",
                    kTop + ph, "\" stroke=\"#555\" stroke-dasharray=\"5 4\"/>\n<text x=\"",
                    Num(px + 4), "\" y=\"", kTop + 14, "\" class=\"tick\">target</text>\n");
  }
  int legend_row = 0;
  for (std::size_t s = 0; s < series.size(); ++s) {
    const DetSeries& ds = series[s];
    const std::string colour = ds.emphasised ? "#111" : SeriesColour(static_cast<int>(s));
    const std::string width = ds.emphasised ? "3.5" : "1.8";
    std::string points;
    for (const DetPoint& p : ds.points) {
      absl::StrAppend(&points, Num(x(p.fmr)), ",", Num(y(p.fnmr)), " ");
    }
    if (!points.empty()) {
      absl::StrAppend(&svg, "<polyline fill=\"none\" stroke=\"", colour, "\" stroke-width=\"",
                      width, "\" stroke-linejoin=\"round\" points=\"", points, "\"/>\n");
    }
    for (const DetWhisker& w : ds.whiskers) {
      const double px = x(w.fmr), lo = y(w.fnmr_low), hi = y(w.fnmr_high);
      absl::StrAppend(&svg, "<path class=\"whisker\" d=\"M", Num(px), " ", Num(lo), "V", Num(hi),
                      "M", Num(px - 5), " ", Num(lo), "h10M", Num(px - 5), " ", Num(hi),
                      "h10\" fill=\"none\" stroke=\"", colour, "\" stroke-width=\"2\"/>\n");
    }
    for (const DetPoint& m : ds.markers) {
      absl::StrAppend(&svg, "<circle cx=\"", Num(x(m.fmr)), "\" cy=\"", Num(y(m.fnmr)),
                      "\" r=\"5\" fill=\"#fff\" stroke=\"", colour, "\" stroke-width=\"2\"/>\n");
    }
    const double ly = kTop + 14 + 20 * legend_row++;
    absl::StrAppend(&svg, "<line x1=\"", kLeft + pw + 14, "\" y1=\"", Num(ly - 4), "\" x2=\"",
                    kLeft + pw + 40, "\" y2=\"", Num(ly - 4), "\" stroke=\"", colour,
                    "\" stroke-width=\"", width, "\"/>\n<text x=\"", kLeft + pw + 46, "\" y=\"",
                    Num(ly), "\" class=\"legend\">", HtmlEscape(ds.name),
                    ds.points.empty() ? " (no curve)" : "", "</text>\n");
  }
  svg += "</svg>\n";
  return svg;
}

std::string HistogramChartSvg(const metrics::ScoreHistogram& genuine,
                              const metrics::ScoreHistogram& impostor,
                              std::optional<double> threshold, bool compact) {
  const double kW = compact ? 360 : 760, kH = compact ? 200 : 300;
  const double kLeft = compact ? 44 : 64, kRight = 14, kTop = 16, kBottom = compact ? 34 : 48;
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  const int bins = metrics::kScoreBinCount;
  // The overflow bin is drawn as one more bin-width after 2.0.
  const double x_max = metrics::kScoreBinEdges.back() + 5 * metrics::kScoreBinWidth;
  const auto x = [&](double d) { return kLeft + std::min(d, x_max) / x_max * pw; };
  const double gt = genuine.total(), it = impostor.total();
  double peak = 0;
  for (int k = 0; k < bins; ++k) {
    if (gt > 0) peak = std::max(peak, genuine.count(k) / gt);
    if (it > 0) peak = std::max(peak, impostor.count(k) / it);
  }
  if (!(peak > 0)) peak = 1;
  const auto y = [&](double share) { return kTop + ph - share / peak * ph; };
  const auto bin_left = [&](int k) {
    return k < metrics::kScoreRegularBins
               ? metrics::kScoreBinEdges[static_cast<std::size_t>(k)]
               : metrics::kScoreBinEdges.back() + metrics::kScoreBinWidth;
  };
  const auto bin_right = [&](int k) {
    return k < metrics::kScoreRegularBins ? metrics::kScoreBinEdges[static_cast<std::size_t>(k) + 1]
                                          : x_max;
  };
  std::string svg = absl::StrCat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"", kW, "\" height=\"", kH,
      "\" viewBox=\"0 0 ", kW, " ", kH,
      "\" role=\"img\" aria-label=\"score histograms\">\n<rect x=\"", kLeft, "\" y=\"", kTop,
      "\" width=\"", pw, "\" height=\"", ph, "\" fill=\"#fbfbfb\" stroke=\"#999\"/>\n");
  for (double d = 0; d <= 2.0001; d += 0.25) {
    const bool major = std::fabs(d - std::round(d * 2) / 2) < 1e-9;
    if (compact && !major) continue;
    absl::StrAppend(&svg, "<line x1=\"", Num(x(d)), "\" y1=\"", kTop, "\" x2=\"", Num(x(d)),
                    "\" y2=\"", kTop + ph, "\" stroke=\"#e4e4e4\"/>\n<text x=\"", Num(x(d)),
                    "\" y=\"", kTop + ph + 14, "\" text-anchor=\"middle\" class=\"tick\">",
                    absl::StrFormat("%g", d), "</text>\n");
  }
  absl::StrAppend(&svg, "<text x=\"", Num(x((bin_left(bins - 1) + x_max) / 2)), "\" y=\"",
                  kTop + ph + 14, "\" text-anchor=\"middle\" class=\"tick\">2+</text>\n");
  if (!compact) {
    absl::StrAppend(&svg, "<text x=\"", Num(kLeft + pw / 2), "\" y=\"", kH - 8,
                    "\" text-anchor=\"middle\" class=\"axis\">distance between the two faces' "
                    "embeddings (lower = more alike)</text>\n<text x=\"16\" y=\"",
                    Num(kTop + ph / 2),
                    "\" text-anchor=\"middle\" class=\"axis\" transform=\"rotate(-90 16 ",
                    Num(kTop + ph / 2), ")\">share of comparisons</text>\n");
  }
  const auto area = [&](const metrics::ScoreHistogram& h, double total, const char* colour) {
    if (!(total > 0)) return std::string();
    std::string path = absl::StrCat("M", Num(x(0)), ",", Num(y(0)));
    for (int k = 0; k < bins; ++k) {
      const double share = h.count(k) / total;
      absl::StrAppend(&path, " L", Num(x(bin_left(k))), ",", Num(y(share)), " L",
                      Num(x(bin_right(k))), ",", Num(y(share)));
    }
    absl::StrAppend(&path, " L", Num(x(x_max)), ",", Num(y(0)), " Z");
    return absl::StrCat("<path d=\"", path, "\" fill=\"", colour,
                        "\" fill-opacity=\"0.35\" "
                        "stroke=\"",
                        colour, "\" stroke-width=\"1.2\"/>\n");
  };
  svg += area(impostor, it, "#d62728");
  svg += area(genuine, gt, "#2ca02c");
  if (threshold) {
    const double px = x(*threshold);
    absl::StrAppend(&svg, "<line x1=\"", Num(px), "\" y1=\"", kTop, "\" x2=\"", Num(px), "\" y2=\"",
                    kTop + ph,
                    "\" stroke=\"#111\" stroke-width=\"2\" "
                    "stroke-dasharray=\"6 3\"/>\n<text x=\"",
                    Num(px + 4), "\" y=\"", kTop + 12, "\" class=\"tick\">threshold ",
                    absl::StrFormat("%.2f", *threshold), "</text>\n");
  }
  const double lx = kLeft + pw - (compact ? 120 : 170);
  absl::StrAppend(&svg, "<rect x=\"", lx, "\" y=\"", kTop + 6,
                  "\" width=\"12\" height=\"10\" fill=\"#2ca02c\" fill-opacity=\"0.5\"/>"
                  "<text x=\"",
                  lx + 16, "\" y=\"", kTop + 15, "\" class=\"legend\">same person",
                  gt > 0 ? "" : " (none)", "</text>\n<rect x=\"", lx, "\" y=\"", kTop + 22,
                  "\" width=\"12\" height=\"10\" fill=\"#d62728\" fill-opacity=\"0.5\"/>"
                  "<text x=\"",
                  lx + 16, "\" y=\"", kTop + 31, "\" class=\"legend\">different people",
                  it > 0 ? "" : " (none)", "</text>\n");
  svg += "</svg>\n";
  return svg;
}

std::string EgressBarsSvg(const std::vector<std::pair<std::string, int64_t>>& bytes) {
  const double kW = 760, kLeft = 150, kRight = 120, kRow = 26, kTop = 10;
  const double kH = kTop * 2 + kRow * static_cast<double>(std::max<std::size_t>(bytes.size(), 1));
  int64_t peak = 1;
  for (const auto& [name, b] : bytes) peak = std::max(peak, b);
  std::string svg =
      absl::StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"", kW,
                   "\" height=\"", kH, "\" viewBox=\"0 0 ", kW, " ", kH,
                   "\" role=\"img\" aria-label=\"bytes received per partner\">\n");
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const double top = kTop + kRow * static_cast<double>(i);
    const double w =
        (kW - kLeft - kRight) * static_cast<double>(bytes[i].second) / static_cast<double>(peak);
    absl::StrAppend(&svg, "<text x=\"", kLeft - 8, "\" y=\"", Num(top + 16),
                    "\" text-anchor=\"end\" class=\"legend\">", HtmlEscape(bytes[i].first),
                    "</text>\n<rect x=\"", kLeft, "\" y=\"", Num(top + 4), "\" width=\"", Num(w),
                    "\" height=\"16\" fill=\"", SeriesColour(static_cast<int>(i)),
                    "\"/>\n<text x=\"", Num(kLeft + w + 6), "\" y=\"", Num(top + 16),
                    "\" class=\"legend\">", bytes[i].second, " bytes</text>\n");
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace fedface::vendor
