#include "core/metrics/metric_intervals.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/metrics/verification_metrics.h"

namespace fedface::metrics {
namespace {

// Point masses on the knots m = 0..bins (knot m at knots[m]; the last stands for +inf).
struct Placed {
  std::vector<double> genuine;
  std::vector<double> impostor;
  double genuine_total = 0;
  double impostor_total = 0;
};

Placed Place(std::size_t bins, std::span<const double> g, std::span<const double> i, bool worst) {
  Placed p;
  p.genuine.assign(bins + 1, 0.0);
  p.impostor.assign(bins + 1, 0.0);
  for (std::size_t k = 0; k < bins; ++k) {
    // worst: genuine as far as its bin allows, impostor as close; best: the reverse.
    p.genuine[worst ? k + 1 : k] += std::max(0.0, g[k]);
    p.impostor[worst ? k : k + 1] += std::max(0.0, i[k]);
  }
  for (double v : p.genuine) p.genuine_total += v;
  for (double v : p.impostor) p.impostor_total += v;
  return p;
}

double KnotThreshold(const BinLayout& layout, std::size_t m) {
  // The open last bin's upper knot stands for +inf; its nominal value keeps the ROC points
  // ordered.
  return layout.knots[m];
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// Replicate of one side of one release around `mean` (its consistent counts): resampled and
// re-noised; made consistent when `consistent` (else the caller does, after pooling).
std::vector<double> Replicate(const std::vector<double>& means, double noise_scale, bool consistent,
                              std::mt19937_64& rng) {
  std::vector<double> raw(means.size());
  for (std::size_t k = 0; k < raw.size(); ++k) {
    const double mean = std::max(0.0, means[k]);
    raw[k] = mean > 0 ? static_cast<double>(std::poisson_distribution<int64_t>(mean)(rng)) : 0.0;
    if (noise_scale > 0) raw[k] += static_cast<double>(DrawDiscreteLaplace(noise_scale, rng));
  }
  return consistent && noise_scale > 0 ? ConsistentCounts(raw) : raw;
}

}  // namespace

int64_t DrawDiscreteLaplace(double scale, std::mt19937_64& rng) {
  // The difference of two geometric variables with success probability 1 - exp(-1/scale).
  std::geometric_distribution<int64_t> geometric(-std::expm1(-1.0 / scale));
  return geometric(rng) - geometric(rng);
}

BracketMetrics BracketedMetrics(const BinLayout& layout, std::span<const double> genuine,
                                std::span<const double> impostor, std::span<const double> targets,
                                bool worst) {
  BracketMetrics out;
  out.fnmr_at_fmr.assign(targets.size(), std::nullopt);
  const std::size_t bins = static_cast<std::size_t>(layout.bins);
  const Placed p = Place(bins, genuine, impostor, worst);
  const double ng = p.genuine_total, ni = p.impostor_total;
  if (!(ng > 0) || !(ni > 0)) return out;

  // ROC AUC of the point masses: P(genuine < impostor) + P(tie) / 2.
  double impostor_above = ni, wins = 0;
  for (std::size_t m = 0; m <= bins; ++m) {
    impostor_above -= p.impostor[m];
    wins += p.genuine[m] * (std::max(0.0, impostor_above) + 0.5 * p.impostor[m]);
  }
  out.roc_auc = std::clamp(wins / (ng * ni), 0.0, 1.0);

  // ROC points "distance <= knot m", and the EER where FMR and FNMR cross.
  std::vector<double> g_at_most(bins + 1), i_at_most(bins + 1);
  double g_sum = 0, i_sum = 0;
  for (std::size_t m = 0; m <= bins; ++m) {
    g_sum += p.genuine[m];
    i_sum += p.impostor[m];
    g_at_most[m] = g_sum;
    i_at_most[m] = i_sum;
  }
  std::vector<RocPoint> points;
  points.push_back(RocPoint{layout.knots.front() - 1.0, 0.0, 1.0});
  for (std::size_t m = 0; m <= bins; ++m) {
    points.push_back(RocPoint{KnotThreshold(layout, m), std::min(1.0, i_at_most[m] / ni),
                              std::max(0.0, (ng - g_at_most[m]) / ng)});
  }
  if (auto e = EerFromRocPoints(points)) out.eer = e->eer;

  // FNMR at the largest threshold whose FMR <= target: just below the first knot m* at which
  // the impostor mass passes the target, so every genuine mass at knots >= m* is a non-match.
  for (std::size_t t = 0; t < targets.size(); ++t) {
    if (ni < static_cast<double>(MinimumTrialsFor(targets[t]))) continue;
    const double allowed = targets[t] * ni * (1 + 1e-12);
    std::size_t first_over = bins + 1;
    for (std::size_t m = 0; m <= bins; ++m) {
      if (i_at_most[m] > allowed) {
        first_over = m;
        break;
      }
    }
    const double matched = first_over == 0 ? 0.0 : g_at_most[first_over - 1];
    out.fnmr_at_fmr[t] = std::clamp((ng - matched) / ng, 0.0, 1.0);
  }
  return out;
}

namespace {

// Cumulative shares F(k) = mass of bins 0..k / total, k = 0..bins-1 (all 0 for an empty side).
std::vector<double> CumulativeShares(const std::vector<double>& counts) {
  std::vector<double> f(counts.size(), 0.0);
  double total = 0;
  for (double c : counts) total += std::max(0.0, c);
  double sum = 0;
  for (std::size_t k = 0; k < counts.size(); ++k) {
    sum += std::max(0.0, counts[k]);
    f[k] = total > 0 ? sum / total : 0.0;
  }
  return f;
}

// Counts (scaled to `total`) of the lower (upper = false) or upper edge of the band
// F(k) -/+ band(k) around a CDF: the tightest nondecreasing CDF the band allows on that side
// (a true CDF above F(j) - band(j) for some j <= k is above it at k too), the last bin taking
// the rest.
std::vector<double> BandEdgeCounts(const std::vector<double>& f, const std::vector<double>& band,
                                   bool upper, double total) {
  const std::size_t n = f.size();
  std::vector<double> edge(n, 1.0);
  if (upper) {
    double running = 1.0;
    for (std::size_t k = n; k-- > 0;) {
      if (k + 1 < n) running = std::min(running, std::clamp(f[k] + band[k], 0.0, 1.0));
      edge[k] = running;
    }
  } else {
    double running = 0.0;
    for (std::size_t k = 0; k + 1 < n; ++k) {
      running = std::max(running, std::clamp(f[k] - band[k], 0.0, 1.0));
      edge[k] = running;
    }
  }
  std::vector<double> counts(n, 0.0);
  double previous = 0;
  for (std::size_t k = 0; k < n; ++k) {
    counts[k] = std::max(0.0, edge[k] - previous) * total;
    previous = std::max(previous, edge[k]);
  }
  return counts;
}

// A simultaneous band from replicate CDFs: studentized sup distance, so the band is narrow where
// the CDF is certain (the tails that FNMR at small FMR reads) and wide where it is not, plus the
// replicates' systematic shift from the released CDF (noise and the consistency step move mass
// into empty bins; the release carries that shift once already).
std::vector<double> Band(const std::vector<std::vector<double>>& replicate_cdfs,
                         const std::vector<double>& released, double total, double level) {
  const std::size_t n = released.size();
  const double count = static_cast<double>(replicate_cdfs.size());
  std::vector<double> mean(n, 0.0), sd(n, 0.0);
  for (const auto& f : replicate_cdfs) {
    for (std::size_t k = 0; k < n; ++k) mean[k] += f[k] / count;
  }
  for (const auto& f : replicate_cdfs) {
    for (std::size_t k = 0; k < n; ++k) sd[k] += (f[k] - mean[k]) * (f[k] - mean[k]) / count;
  }
  // No bin's spread counts as less than one comparison: a bin that a rare replicate moves by
  // one count must not dictate the band's width everywhere.
  const double floor = 1.0 / std::max(total, 1.0);
  for (double& v : sd) v = std::max(std::sqrt(v), floor);
  std::vector<double> z;
  for (const auto& f : replicate_cdfs) {
    double worst = 0;
    for (std::size_t k = 0; k < n; ++k) worst = std::max(worst, std::fabs(f[k] - mean[k]) / sd[k]);
    z.push_back(worst);
  }
  const double q = Quantile(z, level);
  std::vector<double> band(n);
  for (std::size_t k = 0; k < n; ++k) band[k] = q * sd[k] + std::fabs(mean[k] - released[k]);
  return band;
}

}  // namespace

VerificationIntervals ComputeVerificationIntervals(const BinLayout& layout,
                                                   std::span<const ReleasedPair> releases,
                                                   std::span<const double> targets,
                                                   Consistency consistency, std::mt19937_64& rng,
                                                   int replicates) {
  const std::size_t bins = static_cast<std::size_t>(layout.bins);
  const bool per_release = consistency == Consistency::kPerRelease;
  // Each release's consistent counts: the centre its replicates are drawn around.
  std::vector<std::vector<double>> means_g, means_i;
  std::vector<double> g(bins, 0.0), i(bins, 0.0);
  for (const ReleasedPair& release : releases) {
    means_g.push_back(per_release ? release.genuine.counts
                                  : ConsistentCounts(release.genuine.counts));
    means_i.push_back(per_release ? release.impostor.counts
                                  : ConsistentCounts(release.impostor.counts));
    for (std::size_t k = 0; k < bins; ++k) {
      g[k] += release.genuine.counts[k];
      i[k] += release.impostor.counts[k];
    }
  }
  if (!per_release) {
    g = ConsistentCounts(g);
    i = ConsistentCounts(i);
  }
  double ng = 0, ni = 0;
  for (std::size_t k = 0; k < bins; ++k) {
    ng += std::max(0.0, g[k]);
    ni += std::max(0.0, i[k]);
  }
  VerificationIntervals out;
  out.fnmr_at_fmr.assign(targets.size(), std::nullopt);
  if (!(ng > 0) || !(ni > 0) || replicates < 1) return out;
  const std::vector<double> fg = CumulativeShares(g), fi = CumulativeShares(i);

  // Replicate CDFs per side, and from them a band around each released CDF.
  std::vector<std::vector<double>> cdf_g, cdf_i;
  for (int r = 0; r < replicates; ++r) {
    std::vector<double> rg(bins, 0.0), ri(bins, 0.0);
    for (std::size_t p = 0; p < releases.size(); ++p) {
      const std::vector<double> a =
          Replicate(means_g[p], releases[p].genuine.noise_scale, per_release, rng);
      const std::vector<double> b =
          Replicate(means_i[p], releases[p].impostor.noise_scale, per_release, rng);
      for (std::size_t k = 0; k < bins; ++k) {
        rg[k] += a[k];
        ri[k] += b[k];
      }
    }
    if (!per_release) {
      rg = ConsistentCounts(rg);
      ri = ConsistentCounts(ri);
    }
    cdf_g.push_back(CumulativeShares(rg));
    cdf_i.push_back(CumulativeShares(ri));
  }
  // Two sides, each band at 1 - (1 - level) / 2: together they hold with the stated level.
  const double level = 1 - (1 - kIntervalLevel) / 2;
  const std::vector<double> band_g = Band(cdf_g, fg, ng, level);
  const std::vector<double> band_i = Band(cdf_i, fi, ni, level);

  // Worst case: genuine CDF at the band's lower edge, impostor at its upper edge, and every
  // bin's mass at the edge that makes it worse; best case the reverse.
  const BracketMetrics worst =
      BracketedMetrics(layout, BandEdgeCounts(fg, band_g, false, ng),
                       BandEdgeCounts(fi, band_i, true, ni), targets, true);
  const BracketMetrics best =
      BracketedMetrics(layout, BandEdgeCounts(fg, band_g, true, ng),
                       BandEdgeCounts(fi, band_i, false, ni), targets, false);
  auto interval = [](const std::optional<double>& low,
                     const std::optional<double>& high) -> std::optional<Interval> {
    if (!low || !high) return std::nullopt;
    return Interval{std::min(*low, *high), std::max(*low, *high)};
  };
  out.roc_auc = interval(worst.roc_auc, best.roc_auc);
  out.eer = interval(best.eer, worst.eer);
  for (std::size_t t = 0; t < targets.size(); ++t) {
    out.fnmr_at_fmr[t] = interval(best.fnmr_at_fmr[t], worst.fnmr_at_fmr[t]);
  }
  return out;
}

}  // namespace fedface::metrics
