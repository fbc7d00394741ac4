#include "core/metrics/release_derivation.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/metrics/score_histogram.h"
#include "core/metrics/verification_metrics.h"

namespace fedface::metrics {
namespace {

// One point of a side pair's piecewise-linear path: at each knot the CDFs' left limits, then
// their values (a bracket reading jumps there); between consecutive points both are linear.
struct PathPoint {
  double t = 0;
  double fmr = 0;       // impostor CDF
  double genuine = 0;   // genuine CDF (FNMR = 1 - genuine)
  double position = 0;  // bins below t (fractional), for the noise s.d.
};

// cum[k] = mass of bins 0..k-1.
std::vector<double> Cumulative(std::span<const double> counts) {
  std::vector<double> cum(counts.size() + 1, 0.0);
  for (std::size_t k = 0; k < counts.size(); ++k) cum[k + 1] = cum[k] + counts[k];
  return cum;
}

// A side's CDF just before knot j (left) and at knot j (right).
std::pair<double, double> AtKnot(const std::vector<double>& cum, double total, std::size_t j,
                                 CdfReading reading) {
  const std::size_t bins = cum.size() - 1;
  auto share = [&](std::size_t k) { return cum[std::min(k, bins)] / total; };
  switch (reading) {
    case CdfReading::kInterpolate:
      return {share(j), share(j)};
    case CdfReading::kMassAtLeftEdge:  // bin j's mass arrives at knot j
      return {share(j), j < bins ? share(j + 1) : 1.0};
    case CdfReading::kMassAtRightEdge:  // bin j-1's mass arrives at knot j
      return {j == 0 ? 0.0 : share(j - 1), share(j)};
  }
  return {0, 0};
}

std::vector<PathPoint> Path(const BinLayout& layout, const std::vector<double>& g_cum,
                            double g_total, CdfReading g_reading, const std::vector<double>& i_cum,
                            double i_total, CdfReading i_reading) {
  std::vector<PathPoint> path;
  for (std::size_t j = 0; j < layout.knots.size(); ++j) {
    const auto [g_left, g_right] = AtKnot(g_cum, g_total, j, g_reading);
    const auto [i_left, i_right] = AtKnot(i_cum, i_total, j, i_reading);
    const double t = layout.knots[j];
    path.push_back({t, i_left, g_left, static_cast<double>(j)});
    if (g_left != g_right || i_left != i_right) {
      path.push_back({t, i_right, g_right, static_cast<double>(j)});
    }
  }
  return path;
}

PathPoint Between(const PathPoint& a, const PathPoint& b, double lambda) {
  return {a.t + lambda * (b.t - a.t), a.fmr + lambda * (b.fmr - a.fmr),
          a.genuine + lambda * (b.genuine - a.genuine),
          a.position + lambda * (b.position - a.position)};
}

struct NoiseSd {
  double fmr = 0;
  double fnmr = 0;
};
NoiseSd SdAt(const PathPoint& p, int bins, double g_variance, double i_variance, double g_total,
             double i_total) {
  // The noise of a cumulative count is the sum of the bins on its shorter side.
  const double below = std::clamp(p.position, 0.0, static_cast<double>(bins));
  const double shorter = std::min(below, bins - below);
  return {std::sqrt(i_variance * shorter) / i_total, std::sqrt(g_variance * shorter) / g_total};
}

}  // namespace

absl::StatusOr<BinLayout> LayoutOf(int version) {
  BinLayout layout;
  layout.version = version;
  if (version == kScoreBinEdgesVersion) {
    layout.bins = kScoreBinCount;
    layout.knots.assign(kScoreBinEdges.begin(), kScoreBinEdges.end());
    layout.knots.push_back(kScoreBinEdges.back() + kScoreBinWidth);
    return layout;
  }
  if (version == kBinLayoutV2) {
    layout.bins = kLayoutV2Bins;
    layout.knots.push_back(0.0);
    layout.knots.insert(layout.knots.end(), kLayoutV2Edges.begin(), kLayoutV2Edges.end());
    layout.knots.push_back(kLayoutV2Top);
    return layout;
  }
  return absl::NotFoundError(absl::StrCat("bin layout version ", version, " is not known"));
}

int LayoutV2BinIndex(double distance) {
  if (distance < kLayoutV2Edges.front()) return 0;
  if (distance >= kLayoutV2Edges.back()) return kLayoutV2Bins - 1;
  return static_cast<int>(std::upper_bound(kLayoutV2Edges.begin(), kLayoutV2Edges.end(), distance) -
                          kLayoutV2Edges.begin());
}

std::vector<double> ConsistentCounts(std::span<const double> noisy) {
  if (noisy.empty()) return {};
  // Cumulative counts, then the closest nondecreasing sequence (pool-adjacent-violators).
  std::vector<double> value;
  std::vector<std::size_t> width;
  double sum = 0;
  for (double v : noisy) {
    sum += v;
    value.push_back(sum);
    width.push_back(1);
    while (value.size() > 1 && value[value.size() - 2] > value.back()) {
      const double v2 = value.back();
      const std::size_t w2 = width.back();
      value.pop_back();
      width.pop_back();
      value.back() =
          (value.back() * static_cast<double>(width.back()) + v2 * static_cast<double>(w2)) /
          static_cast<double>(width.back() + w2);
      width.back() += w2;
    }
  }
  // Rounded cumulative counts stay nondecreasing, so their differences are integers >= 0.
  const double total = std::max(0.0, std::round(value.back()));
  std::vector<double> counts;
  counts.reserve(noisy.size());
  double previous = 0;
  for (std::size_t block = 0; block < value.size(); ++block) {
    const double cumulative = std::clamp(std::round(value[block]), 0.0, total);
    for (std::size_t k = 0; k < width[block]; ++k) {
      counts.push_back(std::max(0.0, cumulative - previous));
      previous = std::max(previous, cumulative);
    }
  }
  return counts;
}

double SideNoise::BinVariance() const {
  double sum = 0;
  for (double t : scales) {
    if (!(t > 0)) continue;
    const double a = std::exp(-1.0 / t);
    sum += 2 * a / ((1 - a) * (1 - a));
  }
  return sum;
}

double SideCdf(const BinLayout& layout, std::span<const double> counts, double total, double t,
               CdfReading reading) {
  if (!(total > 0)) return 0;
  double cumulative = 0;
  for (int k = 0; k < layout.bins; ++k) {
    const double lo = layout.knots[static_cast<std::size_t>(k)];
    const double hi = layout.knots[static_cast<std::size_t>(k) + 1];
    if (t < hi) {
      const double share = reading == CdfReading::kInterpolate ? std::max(0.0, t - lo) / (hi - lo)
                           : reading == CdfReading::kMassAtLeftEdge ? (t >= lo ? 1.0 : 0.0)
                                                                    : 0.0;
      return std::clamp((cumulative + counts[static_cast<std::size_t>(k)] * share) / total, 0.0,
                        1.0);
    }
    cumulative += counts[static_cast<std::size_t>(k)];
  }
  return 1.0;
}

absl::StatusOr<DerivedMetrics> DeriveVerificationMetrics(int layout_version,
                                                         std::span<const double> genuine_noisy,
                                                         std::span<const double> impostor_noisy,
                                                         const PublicNoise& noise,
                                                         CdfReading genuine_reading,
                                                         CdfReading impostor_reading) {
  ASSIGN_OR_RETURN(BinLayout layout, LayoutOf(layout_version));
  for (auto [side, name] : {std::pair{genuine_noisy, "genuine"}, {impostor_noisy, "impostor"}}) {
    if (side.size() != static_cast<std::size_t>(layout.bins)) {
      return absl::InvalidArgumentError(absl::StrCat("release derivation: ", name, " has ",
                                                     side.size(), " bins, layout ", layout_version,
                                                     " has ", layout.bins));
    }
    for (double v : side) {
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("release derivation: a ", name, " count is not finite"));
      }
    }
  }
  DerivedMetrics out;
  out.layout_version = layout_version;
  out.genuine = ConsistentCounts(genuine_noisy);
  out.impostor = ConsistentCounts(impostor_noisy);
  for (double v : out.genuine) out.genuine_total += v;
  for (double v : out.impostor) out.impostor_total += v;
  const double gt = out.genuine_total, it = out.impostor_total;

  for (std::size_t k = 0; k < kDerivedFmrTargets.size(); ++k) {
    out.fnmr_at_fmr[k].withheld =
        !(gt > 0) ? Withheld::kNoMated
        : it < static_cast<double>(MinimumTrialsFor(kDerivedFmrTargets[k]))
            ? Withheld::kInsufficientNonMated
            : Withheld::kNone;
  }
  if (!(gt > 0) || !(it > 0)) {
    const Withheld why = !(gt > 0) ? Withheld::kNoMated : Withheld::kInsufficientNonMated;
    out.eer.withheld = why;
    out.roc_auc.withheld = why;
    return out;
  }
  const std::vector<PathPoint> path = Path(layout, Cumulative(out.genuine), gt, genuine_reading,
                                           Cumulative(out.impostor), it, impostor_reading);
  const double g_var = noise.genuine.BinVariance(), i_var = noise.impostor.BinVariance();
  auto sd_at = [&](const PathPoint& p) { return SdAt(p, layout.bins, g_var, i_var, gt, it); };

  // ROC AUC = P(genuine < impostor), ties counted half: exact for piecewise-linear CDFs.
  double auc = 0;
  std::optional<PathPoint> eer_point;
  for (std::size_t k = 0; k + 1 < path.size(); ++k) {
    const PathPoint& a = path[k];
    const PathPoint& b = path[k + 1];
    auc += 0.5 * (a.genuine + b.genuine) * (b.fmr - a.fmr);
    const double ha = 1 - a.genuine - a.fmr, hb = 1 - b.genuine - b.fmr;
    if (!eer_point && ha > 0 && hb <= 0) eer_point = Between(a, b, ha / (ha - hb));
  }
  if (!eer_point) eer_point = path.front();  // FNMR <= FMR from the start
  const NoiseSd eer_sd = sd_at(*eer_point);
  const bool eer_noisy = eer_sd.fmr > kTooNoisyRateSd || eer_sd.fnmr > kTooNoisyRateSd;
  out.eer.noise_sd = std::max(eer_sd.fmr, eer_sd.fnmr);
  out.roc_auc.noise_sd = out.eer.noise_sd;
  out.eer.withheld = eer_noisy ? Withheld::kTooNoisy : Withheld::kNone;
  out.roc_auc.withheld = out.eer.withheld;
  if (!eer_noisy) {
    out.eer.value = std::clamp(0.5 * (eer_point->fmr + 1 - eer_point->genuine), 0.0, 1.0);
    out.eer.threshold = eer_point->t;
    out.roc_auc.value = std::clamp(auc, 0.0, 1.0);
  }

  for (std::size_t k = 0; k < kDerivedFmrTargets.size(); ++k) {
    DerivedRate& r = out.fnmr_at_fmr[k];
    if (r.withheld != Withheld::kNone) continue;
    const double target = kDerivedFmrTargets[k];
    // The largest threshold whose FMR <= target: inside the first segment that passes it (at
    // its start when the FMR jumps there: the threshold is just below the jump).
    PathPoint at = path.back();
    for (std::size_t j = 0; j + 1 < path.size(); ++j) {
      const PathPoint& a = path[j];
      const PathPoint& b = path[j + 1];
      if (b.fmr <= target * (1 + 1e-12)) continue;
      at = a.t == b.t ? a : Between(a, b, (target - a.fmr) / (b.fmr - a.fmr));
      break;
    }
    const NoiseSd sd = sd_at(at);
    r.noise_sd = sd.fmr;
    if (sd.fmr > target * kTooNoisyFmrShareOfTarget || sd.fnmr > kTooNoisyRateSd) {
      r.withheld = Withheld::kTooNoisy;
      continue;
    }
    r.value = std::clamp(1 - at.genuine, 0.0, 1.0);
    r.threshold = at.t;
    r.achieved = std::clamp(at.fmr, 0.0, 1.0);
  }
  return out;
}

}  // namespace fedface::metrics
