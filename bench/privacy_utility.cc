// Privacy-utility bench (issue 12): how far the released verification metrics are from the
// non-private truth, per mechanism, partner size, epsilon and number of pooled partners.
//
//   build/bench/privacy_utility [--quick] [--json] [--runs N] [--fit FILE]
//
// Population model: genuine and impostor distances are normal, fitted (mean, s.d.) to the
// distances measured on ../shared/datasets (bench/privacy_utility_fit.txt says how; --fit reads
// another file in the same format). The fit is printed beside the measured distributions.
// The truth is the model's exact (continuous) ROC AUC, EER and FNMR @ FMR, so binning error is
// part of the measured error.
//
// A simulated partner of n subjects cannot be enumerated pairwise at 1M subjects, so each
// subject contributes exactly what the production contribution bounds let it contribute.
// Mechanisms:
//   current : the product's verification release (issue 12): c_g mated comparisons per subject
//             and n * floor(c_i / 2) impostor pairs (the hash ring), counted over bin layout 2
//             (metrics::LayoutV2BinIndex), then AddLayoutV2Noise (LayoutV2NoiseFor: the epsilon
//             split and each side's scale; SampleDiscreteLaplace; raw unclamped counts), pooled by
//             adding the raw counts as the coordinator does, then
//             metrics::DeriveVerificationMetrics (ConsistentCounts, interpolation, the
//             public-values too-noisy rule) with the partners' public noise scales. c_g, c_i and
//             the split are DifferentialPrivacyConfig's defaults, as a partner runs them.
//   baseline: the mechanism before issue 10 (bench only): c mated and c rounds of a random
//             matching of impostors into ContributionBoundedHistograms::Build (201 bins),
//             SampleDiscreteLaplace at the old scale 4c / epsilon on every bin, negative counts
//             clamped at 0 by ScoreHistogram::FromCounts, metrics::RocAuc, Eer, ComputeFnmrAtFmr.
// A figure the derivation withholds is counted as withheld, not as an error.
// Populations are drawn once per size (10 partners), and every run draws fresh noise from the
// CSPRNG (MakeSecureNoiseSource), the source a running node uses.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/metrics/metric_intervals.h"
#include "core/metrics/release_derivation.h"
#include "core/metrics/score_histogram.h"
#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/egress_config.h"

namespace fedface::partner {
namespace {

struct Side {
  double mean = 0, sd = 0;
  // The measured distribution the fit stands for (printed beside it).
  long count = 0;
  double p5 = 0, median = 0, p95 = 0;
};
struct Fit {
  std::string source;
  Side genuine, impostor;
};

// Reads `key value` lines (# comments): source, {genuine,impostor}_{mean,sd,count,p5,median,p95}.
std::optional<Fit> ReadFit(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  Fit fit;
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key, value;
    fields >> key;
    std::getline(fields >> std::ws, value);
    kv[key] = value;
  }
  auto number = [&](const std::string& key) { return std::atof(kv[key].c_str()); };
  fit.source = kv["source"];
  for (auto [name, side] : {std::pair{"genuine", &fit.genuine}, {"impostor", &fit.impostor}}) {
    const std::string p = name;
    side->mean = number(p + "_mean");
    side->sd = number(p + "_sd");
    side->count = static_cast<long>(number(p + "_count"));
    side->p5 = number(p + "_p5");
    side->median = number(p + "_median");
    side->p95 = number(p + "_p95");
  }
  if (!(fit.genuine.sd > 0 && fit.impostor.sd > 0)) return std::nullopt;
  return fit;
}

double Phi(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double PhiInverse(double p) {  // bisection is plenty here
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) (Phi(0.5 * (lo + hi)) < p ? lo : hi) = 0.5 * (lo + hi);
  return 0.5 * (lo + hi);
}

// The model's exact metrics.
struct Truth {
  double roc_auc, eer, fnmr_1e2, fnmr_1e3;
};
Truth TruthOf(const Fit& f) {
  const Side& g = f.genuine;
  const Side& i = f.impostor;
  Truth t;
  t.roc_auc = Phi((i.mean - g.mean) / std::hypot(g.sd, i.sd));
  // EER: FMR(t) = Phi((t - mi)/si) equals FNMR(t) = 1 - Phi((t - mg)/sg).
  double lo = g.mean, hi = i.mean;
  for (int k = 0; k < 200; ++k) {
    const double m = 0.5 * (lo + hi);
    (Phi((m - i.mean) / i.sd) < 1 - Phi((m - g.mean) / g.sd) ? lo : hi) = m;
  }
  t.eer = Phi((lo - i.mean) / i.sd);
  auto fnmr_at = [&](double fmr) {
    const double threshold = i.mean + i.sd * PhiInverse(fmr);
    return 1 - Phi((threshold - g.mean) / g.sd);
  };
  t.fnmr_1e2 = fnmr_at(1e-2);
  t.fnmr_1e3 = fnmr_at(1e-3);
  return t;
}

// One simulated partner: its contribution-bounded histograms, built by production code.
ContributionBoundedHistograms SimulatePartner(const Fit& fit, int64_t subjects, int c,
                                              std::mt19937_64& rng) {
  std::normal_distribution<double> genuine(fit.genuine.mean, fit.genuine.sd);
  std::normal_distribution<double> impostor(fit.impostor.mean, fit.impostor.sd);
  std::vector<AttributedScore> mated, non_mated;
  mated.reserve(static_cast<std::size_t>(subjects * c));
  non_mated.reserve(static_cast<std::size_t>(subjects * c / 2 + 1));
  for (int64_t s = 0; s < subjects; ++s) {
    for (int k = 0; k < c; ++k) mated.push_back({s, s, std::max(0.0, genuine(rng))});
  }
  // c rounds of a random perfect matching: each subject is behind at most c impostor entries.
  std::vector<int64_t> order(static_cast<std::size_t>(subjects));
  std::iota(order.begin(), order.end(), 0);
  for (int round = 0; round < c; ++round) {
    std::shuffle(order.begin(), order.end(), rng);
    for (std::size_t k = 0; k + 1 < order.size(); k += 2) {
      non_mated.push_back({order[k], order[k + 1], std::max(0.0, impostor(rng))});
    }
  }
  auto built = ContributionBoundedHistograms::Build(c, mated, non_mated);
  if (!built.ok()) {
    std::fprintf(stderr, "privacy_utility: %s\n", built.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(built);
}

// The mechanism before issue 10, kept here only to compare against: per-bin discrete Laplace
// noise, negative counts clamped at zero (FromCounts), no consistency step.
NoisyHistograms BaselineNoise(const ContributionBoundedHistograms& bounded, double epsilon,
                              NoiseSource& noise) {
  NoisyHistograms out;
  out.epsilon = epsilon;
  out.scale = SideNoiseScale(4 * static_cast<int64_t>(bounded.contribution_bound()),
                             std::llround(epsilon * 1e6));  // the old 4c / epsilon
  auto noisy = [&](const metrics::ScoreHistogram& h) {
    std::vector<double> raw(h.counts());
    for (double& v : raw) v += static_cast<double>(SampleDiscreteLaplace(out.scale, noise));
    return *metrics::ScoreHistogram::FromCounts(raw);
  };
  out.genuine = noisy(bounded.genuine());
  out.impostor = noisy(bounded.impostor());
  return out;
}

constexpr const char* kMetrics[] = {"roc_auc", "eer", "fnmr_at_fmr_1e-2", "fnmr_at_fmr_1e-3"};
constexpr int kMetricCount = 4;

// Released metrics from (pooled) histograms; nullopt = withheld.
std::array<std::optional<double>, kMetricCount> Released(const metrics::ScoreHistogram& g,
                                                         const metrics::ScoreHistogram& i) {
  std::array<std::optional<double>, kMetricCount> out;
  out[0] = metrics::RocAuc(g, i);
  if (auto eer = metrics::Eer(g, i)) out[1] = eer->eer;
  int k = 2;
  for (double target : {1e-2, 1e-3}) {
    const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(g, i, target);
    if (f.availability == metrics::Availability::kAvailable) out[k] = f.point->fnmr;
    ++k;
  }
  return out;
}

// ---- current: the product's layout-2 release ----
struct CurrentPartner {
  std::vector<double> genuine, impostor;  // exact bounded counts over layout 2
};
CurrentPartner SimulateCurrent(const Fit& fit, int64_t subjects, VerificationBounds bounds,
                               std::mt19937_64& rng) {
  std::normal_distribution<double> genuine(fit.genuine.mean, fit.genuine.sd);
  std::normal_distribution<double> impostor(fit.impostor.mean, fit.impostor.sd);
  CurrentPartner p;
  p.genuine.assign(metrics::kLayoutV2Bins, 0);
  p.impostor.assign(metrics::kLayoutV2Bins, 0);
  for (int64_t k = 0; k < subjects * bounds.genuine; ++k) {
    p.genuine[metrics::LayoutV2BinIndex(genuine(rng))] += 1;
  }
  const int64_t pairs = subjects * ImpostorRingNeighbours(bounds.impostor);
  for (int64_t k = 0; k < pairs; ++k) p.impostor[metrics::LayoutV2BinIndex(impostor(rng))] += 1;
  return p;
}

std::array<std::optional<double>, kMetricCount> DerivedValues(
    const std::vector<double>& g, const std::vector<double>& i, const metrics::PublicNoise& noise,
    metrics::CdfReading rg = metrics::CdfReading::kInterpolate,
    metrics::CdfReading ri = metrics::CdfReading::kInterpolate) {
  std::array<std::optional<double>, kMetricCount> out;
  const absl::StatusOr<metrics::DerivedMetrics> m =
      metrics::DeriveVerificationMetrics(metrics::kBinLayoutV2, g, i, noise, rg, ri);
  if (!m.ok()) return out;
  out[0] = m->roc_auc.value;
  out[1] = m->eer.value;
  out[2] = m->fnmr_at_fmr[0].value;
  out[3] = m->fnmr_at_fmr[1].value;
  return out;
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// 95 % intervals: the production code the coordinator runs (core/metrics/metric_intervals.h),
// from public values only: each partner's released raw counts and noise scales and the layout.
int bootstrap_replicates = metrics::kIntervalReplicates;  // 40 under --quick
using Interval = std::optional<metrics::Interval>;
std::array<Interval, kMetricCount> CurrentIntervals(
    const std::vector<metrics::ReleasedPair>& releases, std::mt19937_64& rng) {
  static const metrics::BinLayout layout = *metrics::LayoutOf(metrics::kBinLayoutV2);
  constexpr double kTargets[] = {1e-2, 1e-3};
  const metrics::VerificationIntervals v = metrics::ComputeVerificationIntervals(
      layout, releases, kTargets, metrics::Consistency::kAfterPooling, rng, bootstrap_replicates);
  return {v.roc_auc, v.eer, v.fnmr_at_fmr[0], v.fnmr_at_fmr[1]};
}

struct Row {
  std::string mechanism;
  int64_t subjects;
  int partners;
  double epsilon;
  std::string metric;
  double p50, p95;
  int runs, withheld;
  double coverage = std::nan("");  // current: share of runs whose interval holds the truth
  double width_p50 = std::nan("");
};

int Main(int argc, char** argv) {
  bool quick = false, json = false;
  int runs = 50;
  std::string fit_path = FEDFACE_BENCH_FIT_FILE;
  for (int k = 1; k < argc; ++k) {
    const std::string a = argv[k];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--runs" && k + 1 < argc) {
      runs = std::atoi(argv[++k]);
    } else if (a == "--fit" && k + 1 < argc) {
      fit_path = argv[++k];
    } else {
      std::fprintf(stderr, "usage: privacy_utility [--quick] [--json] [--runs N] [--fit FILE]\n");
      return 2;
    }
  }
  const std::optional<Fit> fit = ReadFit(fit_path);
  if (!fit) {
    std::fprintf(stderr, "privacy_utility: cannot read a fit from %s\n", fit_path.c_str());
    return 1;
  }
  const Truth truth = TruthOf(*fit);
  const DifferentialPrivacyConfig dp;
  const int c = dp.contribution_bound;
  // The partner's config defaults (egress.genuine_/impostor_contribution_bound, the impostor
  // share of epsilon), so the bench measures what a partner runs unless told otherwise.
  const VerificationBounds bounds{dp.genuine_contribution_bound, dp.impostor_contribution_bound};
  const double impostor_epsilon_share = dp.impostor_epsilon_share;
  std::vector<int64_t> sizes = {1000, 10000, 100000, 1000000};
  std::vector<double> epsilons = {0.25, 0.5, 1, 2, 4};
  std::vector<int> partner_counts = {1, 3, 10};
  if (quick) {
    sizes = {1000, 10000, 100000};
    epsilons = {0.5, 1, 4};
    partner_counts = {1, 3};
    runs = std::min(runs, 20);
    bootstrap_replicates = 40;
  }
  const int max_partners = *std::max_element(partner_counts.begin(), partner_counts.end());

  FILE* text = json ? stderr : stdout;
  std::fprintf(text, "fit (%s): normal genuine N(%.4f, %.4f), impostor N(%.4f, %.4f)\n",
               fit->source.c_str(), fit->genuine.mean, fit->genuine.sd, fit->impostor.mean,
               fit->impostor.sd);
  std::fprintf(text, "%-9s %8s | %-26s | %-26s\n", "side", "count", "measured p5/median/p95",
               "fit p5/median/p95");
  for (auto [name, s] : {std::pair{"genuine", &fit->genuine}, {"impostor", &fit->impostor}}) {
    const double z = 1.6448536;
    std::fprintf(text, "%-9s %8ld | %.3f / %.3f / %.3f      | %.3f / %.3f / %.3f\n", name, s->count,
                 s->p5, s->median, s->p95, s->mean - z * s->sd, s->mean, s->mean + z * s->sd);
  }
  std::fprintf(text,
               "truth: roc_auc %.6f  eer %.6f  fnmr@fmr1e-2 %.6f  fnmr@fmr1e-3 %.6f; c = %d, "
               "%d runs of fresh noise per point\n\n",
               truth.roc_auc, truth.eer, truth.fnmr_1e2, truth.fnmr_1e3, c, runs);
  const double truth_values[kMetricCount] = {truth.roc_auc, truth.eer, truth.fnmr_1e2,
                                             truth.fnmr_1e3};

  std::unique_ptr<NoiseSource> noise = MakeSecureNoiseSource();
  std::mt19937_64 interval_rng(noise->Bits64());
  std::mt19937_64 rng(20261128);
  std::vector<Row> rows;
  for (int64_t n : sizes) {
    std::vector<ContributionBoundedHistograms> partners;
    std::vector<CurrentPartner> currents;
    for (int p = 0; p < max_partners; ++p) {
      partners.push_back(SimulatePartner(*fit, n, c, rng));
      currents.push_back(SimulateCurrent(*fit, n, bounds, rng));
    }
    for (const char* mechanism : {"baseline", "current"}) {
      const bool current = std::strcmp(mechanism, "current") == 0;
      for (double eps : epsilons) {
        // errors[partner-count index][metric]
        std::vector<std::array<std::vector<double>, kMetricCount>> errors(partner_counts.size());
        std::vector<std::array<int, kMetricCount>> withheld(partner_counts.size(), {0, 0, 0, 0});
        std::vector<std::array<int, kMetricCount>> covered(partner_counts.size(), {0, 0, 0, 0});
        std::vector<std::array<std::vector<double>, kMetricCount>> widths(partner_counts.size());
        for (int r = 0; r < runs; ++r) {
          std::vector<NoisyHistograms> released;
          std::vector<PrivateHistograms> current_released;
          for (int p = 0; p < max_partners; ++p) {
            if (current) {
              current_released.push_back(AddLayoutV2Noise(currents[p].genuine, currents[p].impostor,
                                                          bounds, eps, impostor_epsilon_share,
                                                          *noise));
            } else {
              released.push_back(BaselineNoise(partners[p], eps, *noise));
            }
          }
          for (std::size_t pc = 0; pc < partner_counts.size(); ++pc) {
            std::array<std::optional<double>, kMetricCount> values;
            if (current) {
              std::vector<double> g(metrics::kLayoutV2Bins, 0), i(metrics::kLayoutV2Bins, 0);
              metrics::PublicNoise public_noise;
              for (int p = 0; p < partner_counts[pc]; ++p) {
                for (int k = 0; k < metrics::kLayoutV2Bins; ++k) {
                  g[k] += current_released[p].genuine[k];
                  i[k] += current_released[p].impostor[k];
                }
                public_noise.genuine.scales.push_back(
                    current_released[p].noise.genuine_scale.value());
                public_noise.impostor.scales.push_back(
                    current_released[p].noise.impostor_scale.value());
              }
              values = DerivedValues(g, i, public_noise);
              std::vector<metrics::ReleasedPair> public_view;
              for (int p = 0; p < partner_counts[pc]; ++p) {
                public_view.push_back(
                    {{current_released[p].genuine, current_released[p].noise.genuine_scale.value()},
                     {current_released[p].impostor,
                      current_released[p].noise.impostor_scale.value()}});
              }
              const auto intervals = CurrentIntervals(public_view, interval_rng);
              for (int m = 0; m < kMetricCount; ++m) {
                if (!intervals[m] || !values[m]) continue;
                covered[pc][m] += intervals[m]->Contains(truth_values[m]);
                widths[pc][m].push_back(intervals[m]->width());
              }
            } else {
              metrics::ScoreHistogram g, i;
              for (int p = 0; p < partner_counts[pc]; ++p) {
                g += released[p].genuine;
                i += released[p].impostor;
              }
              values = Released(g, i);
            }
            for (int m = 0; m < kMetricCount; ++m) {
              if (values[m]) {
                errors[pc][m].push_back(std::abs(*values[m] - truth_values[m]));
              } else {
                ++withheld[pc][m];
              }
            }
          }
        }
        for (std::size_t pc = 0; pc < partner_counts.size(); ++pc) {
          for (int m = 0; m < kMetricCount; ++m) {
            Row row{mechanism,
                    n,
                    partner_counts[pc],
                    eps,
                    kMetrics[m],
                    Quantile(errors[pc][m], 0.5),
                    Quantile(errors[pc][m], 0.95),
                    runs,
                    withheld[pc][m]};
            if (current && !widths[pc][m].empty()) {
              row.coverage =
                  static_cast<double>(covered[pc][m]) / static_cast<double>(widths[pc][m].size());
              row.width_p50 = Quantile(widths[pc][m], 0.5);
            }
            rows.push_back(row);
          }
        }
      }
    }
  }

  std::fprintf(text, "%-9s %8s %3s %5s %-17s %11s %11s %5s %8s %8s %10s\n", "mechanism", "subjects",
               "P", "eps", "metric", "err_p50", "err_p95", "runs", "withheld", "coverage",
               "width_p50");
  for (const Row& r : rows) {
    std::fprintf(text, "%-9s %8lld %3d %5.2f %-17s %11.6f %11.6f %5d %8d %8.3f %10.6f\n",
                 r.mechanism.c_str(), static_cast<long long>(r.subjects), r.partners, r.epsilon,
                 r.metric.c_str(), r.p50, r.p95, r.runs, r.withheld, r.coverage, r.width_p50);
  }
  if (json) {
    auto num = [](double v) {
      if (std::isnan(v)) return std::string("null");
      char b[32];
      std::snprintf(b, sizeof b, "%.6g", v);
      return std::string(b);
    };
    std::printf("{\"rows\": [");
    for (std::size_t k = 0; k < rows.size(); ++k) {
      const Row& r = rows[k];
      std::printf(
          "%s\n  {\"mechanism\": \"%s\", \"subjects\": %lld, \"partners\": %d, \"epsilon\": %s, "
          "\"metric\": \"%s\", \"abs_error_p50\": %s, \"abs_error_p95\": %s, \"runs\": %d, "
          "\"withheld\": %d, \"interval_coverage\": %s, \"interval_width_p50\": %s}",
          k ? "," : "", r.mechanism.c_str(), static_cast<long long>(r.subjects), r.partners,
          num(r.epsilon).c_str(), r.metric.c_str(), num(r.p50).c_str(), num(r.p95).c_str(), r.runs,
          r.withheld, num(r.coverage).c_str(), num(r.width_p50).c_str());
    }
    std::printf("\n]}\n");
  }
  return 0;
}

}  // namespace
}  // namespace fedface::partner

int main(int argc, char** argv) { return fedface::partner::Main(argc, argv); }
