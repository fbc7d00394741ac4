#include "core/metrics/verification_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::metrics {
namespace {

// floor(x), but a value within rounding error of an integer counts as that integer
// (1e-3 * 3000 is 3.0000000000000004 or 2.9999999999999996 depending on how it was formed).
double RobustFloor(double x) {
  const double r = std::round(x);
  if (std::fabs(x - r) <= 1e-9 * std::max(1.0, std::fabs(x))) return r;
  return std::floor(x);
}

double RobustCeil(double x) {
  const double r = std::round(x);
  if (std::fabs(x - r) <= 1e-9 * std::max(1.0, std::fabs(x))) return r;
  return std::ceil(x);
}

// Number of elements of the ascending vector that are <= t / < t.
std::size_t CountAtMost(const std::vector<double>& sorted, double t) {
  return std::upper_bound(sorted.begin(), sorted.end(), t) - sorted.begin();
}
std::size_t CountBelow(const std::vector<double>& sorted, double t) {
  return std::lower_bound(sorted.begin(), sorted.end(), t) - sorted.begin();
}

absl::Status CheckFinite(const std::vector<double>& v, const char* side) {
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat("comparison scores: ", side, " distance #", i, " is not finite"));
    }
  }
  return absl::OkStatus();
}

double Percentile(std::span<const double> sorted, double p) {
  const double pos = p * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + frac * (sorted[hi] - sorted[lo]);
}

}  // namespace

std::size_t MinimumTrialsFor(double target) {
  return static_cast<std::size_t>(RobustCeil(kRuleOfThree / target));
}

absl::StatusOr<ComparisonScores> ComparisonScores::FromDistances(std::vector<double> mated,
                                                                 std::vector<double> non_mated) {
  RETURN_IF_ERROR(CheckFinite(mated, "mated"));
  RETURN_IF_ERROR(CheckFinite(non_mated, "non-mated"));
  ComparisonScores scores;
  scores.mated_ = std::move(mated);
  scores.non_mated_ = std::move(non_mated);
  std::sort(scores.mated_.begin(), scores.mated_.end());
  std::sort(scores.non_mated_.begin(), scores.non_mated_.end());
  return scores;
}

ErrorRates ErrorRatesAt(const ComparisonScores& scores, double threshold) {
  ErrorRates rates;
  const auto& g = scores.mated();
  const auto& i = scores.non_mated();
  if (!i.empty()) {
    rates.fmr = static_cast<double>(CountAtMost(i, threshold)) / static_cast<double>(i.size());
  }
  if (!g.empty()) {
    rates.fnmr =
        static_cast<double>(g.size() - CountAtMost(g, threshold)) / static_cast<double>(g.size());
  }
  return rates;
}

std::optional<double> AccuracyAt(const ComparisonScores& scores, double threshold) {
  const auto& g = scores.mated();
  const auto& i = scores.non_mated();
  const std::size_t total = g.size() + i.size();
  if (total == 0) return std::nullopt;
  const std::size_t correct = CountAtMost(g, threshold) + (i.size() - CountAtMost(i, threshold));
  return static_cast<double>(correct) / static_cast<double>(total);
}

std::optional<double> RocAuc(const ComparisonScores& scores) {
  const auto& g = scores.mated();
  const auto& i = scores.non_mated();
  if (g.empty() || i.empty()) return std::nullopt;
  // Walk the mated distances in order; the impostor cursors only move forward.
  double wins = 0;  // counted in halves to stay exact for ties
  std::size_t below = 0, at_most = 0;
  for (double d : g) {
    while (below < i.size() && i[below] < d) ++below;
    if (at_most < below) at_most = below;
    while (at_most < i.size() && i[at_most] <= d) ++at_most;
    const double greater = static_cast<double>(i.size() - at_most);
    const double ties = static_cast<double>(at_most - below);
    wins += greater + 0.5 * ties;
  }
  return wins / (static_cast<double>(g.size()) * static_cast<double>(i.size()));
}

std::optional<EqualErrorRate> EerFromRocPoints(std::span<const RocPoint> points) {
  if (points.empty()) return std::nullopt;
  for (std::size_t k = 0; k < points.size(); ++k) {
    const RocPoint& p = points[k];
    const double d = p.fnmr - p.fmr;
    if (d > 0) continue;
    if (d == 0) return EqualErrorRate{p.fmr, p.threshold};
    if (k == 0) return EqualErrorRate{(p.fmr + p.fnmr) / 2, p.threshold};
    // FNMR - FMR changes sign between points k-1 and k: interpolate along the segment.
    const RocPoint& q = points[k - 1];
    const double dq = q.fnmr - q.fmr;
    const double lambda = dq / (dq - d);
    return EqualErrorRate{q.fmr + lambda * (p.fmr - q.fmr),
                          q.threshold + lambda * (p.threshold - q.threshold)};
  }
  const RocPoint& last = points.back();
  return EqualErrorRate{(last.fmr + last.fnmr) / 2, last.threshold};
}

std::optional<EqualErrorRate> Eer(const ComparisonScores& scores) {
  const auto& g = scores.mated();
  const auto& i = scores.non_mated();
  if (g.empty() || i.empty()) return std::nullopt;
  std::vector<double> values;
  values.reserve(g.size() + i.size());
  std::merge(g.begin(), g.end(), i.begin(), i.end(), std::back_inserter(values));
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<RocPoint> points;
  points.reserve(values.size() + 1);
  // Below every distance: nothing matches.
  points.push_back(RocPoint{values.front(), 0.0, 1.0});
  const double ng = static_cast<double>(g.size());
  const double ni = static_cast<double>(i.size());
  std::size_t g_at_most = 0, i_at_most = 0;
  for (double v : values) {
    while (g_at_most < g.size() && g[g_at_most] <= v) ++g_at_most;
    while (i_at_most < i.size() && i[i_at_most] <= v) ++i_at_most;
    points.push_back(RocPoint{v, static_cast<double>(i_at_most) / ni,
                              static_cast<double>(g.size() - g_at_most) / ng});
  }
  return EerFromRocPoints(points);
}

const char* AvailabilityName(Availability a) {
  switch (a) {
    case Availability::kAvailable:
      return "available";
    case Availability::kInsufficientNonMated:
      return "insufficient non-mated comparisons";
    case Availability::kNoMated:
      return "no mated comparisons";
  }
  return "unknown";
}

FnmrAtFmr ComputeFnmrAtFmr(const ComparisonScores& scores, double target_fmr) {
  FnmrAtFmr out;
  out.target_fmr = target_fmr;
  out.non_mated_needed = MinimumTrialsFor(target_fmr);
  const auto& g = scores.mated();
  const auto& i = scores.non_mated();
  if (i.size() < out.non_mated_needed) {
    out.availability = Availability::kInsufficientNonMated;
    return out;
  }
  if (g.empty()) {
    out.availability = Availability::kNoMated;
    return out;
  }
  // m allowed false matches; the (m+1)-th smallest impostor distance must not match.
  const std::size_t m =
      static_cast<std::size_t>(RobustFloor(target_fmr * static_cast<double>(i.size())));
  const double first_excluded = i[std::min(m, i.size() - 1)];
  const double threshold = std::nextafter(first_excluded, -std::numeric_limits<double>::infinity());
  const std::size_t false_matches = CountBelow(i, first_excluded);
  const std::size_t false_non_matches = g.size() - CountBelow(g, first_excluded);
  out.availability = Availability::kAvailable;
  out.point =
      RocPoint{threshold, static_cast<double>(false_matches) / static_cast<double>(i.size()),
               static_cast<double>(false_non_matches) / static_cast<double>(g.size())};
  return out;
}

std::optional<DistanceSummary> SummarizeDistances(std::span<const double> sorted) {
  if (sorted.empty()) return std::nullopt;
  DistanceSummary s;
  s.count = sorted.size();
  s.min = sorted.front();
  s.max = sorted.back();
  s.p5 = Percentile(sorted, 0.05);
  s.median = Percentile(sorted, 0.5);
  s.p95 = Percentile(sorted, 0.95);
  double sum = 0;
  for (double d : sorted) sum += d;
  s.mean = sum / static_cast<double>(sorted.size());
  return s;
}

VerificationReport ComputeVerificationReport(const ComparisonScores& scores, double threshold,
                                             std::span<const double> fmr_targets) {
  VerificationReport r;
  r.mated_count = scores.mated().size();
  r.non_mated_count = scores.non_mated().size();
  r.threshold = threshold;
  r.accuracy = AccuracyAt(scores, threshold);
  r.at_threshold = ErrorRatesAt(scores, threshold);
  r.eer = Eer(scores);
  r.roc_auc = RocAuc(scores);
  for (double target : fmr_targets) r.fnmr_at_fmr.push_back(ComputeFnmrAtFmr(scores, target));
  r.mated_summary = SummarizeDistances(scores.mated());
  r.non_mated_summary = SummarizeDistances(scores.non_mated());
  return r;
}

}  // namespace fedface::metrics
