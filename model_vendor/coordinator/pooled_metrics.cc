#include "model_vendor/coordinator/pooled_metrics.h"

#include <cmath>
#include <functional>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/metrics/identification_metrics.h"
#include "model_vendor/coordinator/release_check.h"

namespace fedface::vendor {
namespace {

using fedface::v1::EvaluationProtocol;
using fedface::v1::EvaluationRelease;

// The metrics a row shows, in table order.
struct Slot {
  const char* name;
  std::optional<double> target;
  std::string label;
};

std::string TargetText(double t) { return absl::StrFormat("%.0e", t); }

std::vector<Slot> SlotsFor(EvaluationProtocol protocol) {
  std::vector<Slot> slots;
  if (protocol == fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION) {
    slots.push_back({"rank1_identification_rate", std::nullopt, "Rank-1 rate"});
    for (double t : metrics::kStandardFpirTargets) {
      slots.push_back({"fnir_at_fpir", t, absl::StrCat("FNIR @ FPIR ", TargetText(t))});
    }
  } else {
    for (double t : metrics::kStandardFmrTargets) {
      slots.push_back({"fnmr_at_fmr", t, absl::StrCat("FNMR @ FMR ", TargetText(t))});
    }
    slots.push_back({"eer", std::nullopt, "EER"});
    slots.push_back({"roc_auc", std::nullopt, "ROC AUC"});
  }
  slots.push_back({"failure_to_enrol_rate", std::nullopt, "FTE"});
  slots.push_back({"throughput", std::nullopt, "Embeddings/s"});
  return slots;
}

MetricCell Cell(const Slot& slot) {
  MetricCell c;
  c.name = slot.name;
  c.label = slot.label;
  c.target = slot.target;
  return c;
}

void Withhold(MetricCell* c, std::string suppression, std::string reason) {
  c->released = false;
  c->value.reset();
  c->threshold.reset();
  c->achieved_rate.reset();
  c->suppression = std::move(suppression);
  c->reason = std::move(reason);
}

void Release(MetricCell* c, double value) {
  c->released = true;
  c->value = value;
  c->suppression = "none";
  c->reason.clear();
}

void FromSuppression(MetricCell* c, fedface::v1::Suppression s) {
  Withhold(c, SuppressionCode(s), SuppressionReason(s));
}

std::string Count(double mass) { return absl::StrFormat("%.0f", mass); }

// The failure-to-enrol rate and throughput have no pooled value.
void WithholdNotPooled(MetricCell* c) {
  if (c->name == "failure_to_enrol_rate") {
    Withhold(c, "not_pooled",
             "not pooled: partners release their image counts only as bands, so their rates "
             "cannot be weighted into one");
  } else {
    Withhold(c, "not_pooled", "not pooled: each partner measures on its own machines");
  }
}

std::string TooFewImpostors(const char* what, double target, double total) {
  return absl::StrCat("too few impostor comparisons: ", what, TargetText(target),
                      " needs at least ", metrics::MinimumTrialsFor(target), ", the pool has ",
                      Count(total));
}

// A figure of DeriveVerificationMetrics as a cell (withheld with the reason when it is).
void FromDerived(const metrics::DerivedRate& r, double impostor_total, std::optional<double> target,
                 MetricCell* c) {
  switch (r.withheld) {
    case metrics::Withheld::kNone:
      Release(c, *r.value);
      c->threshold = r.threshold;
      c->achieved_rate = r.achieved;
      return;
    case metrics::Withheld::kNoMated:
      Withhold(c, "no_mated", "no genuine comparisons in the pool");
      return;
    case metrics::Withheld::kInsufficientNonMated:
      Withhold(c, "insufficient_non_mated",
               target ? TooFewImpostors("a rate of ", *target, impostor_total)
                      : std::string("no impostor comparisons in the pool"));
      return;
    case metrics::Withheld::kTooNoisy:
      Withhold(c, "too_noisy",
               absl::StrFormat("too noisy: the privacy noise alone gives it a standard deviation "
                               "of %.3g at this pool size, above its limit (public values only)",
                               r.noise_sd));
      c->too_noisy = true;
      return;
  }
}

// An FNMR@FMR (or FNIR@FPIR) from histograms.
void FillAtTarget(const HistogramPair& h, double target, MetricCell* c) {
  const metrics::FnmrAtFmr m = metrics::ComputeFnmrAtFmr(h.genuine, h.impostor, target);
  switch (m.availability) {
    case metrics::Availability::kAvailable:
      Release(c, m.point->fnmr);
      c->threshold = m.point->threshold;
      c->achieved_rate = m.point->fmr;
      return;
    case metrics::Availability::kInsufficientNonMated:
      Withhold(c, "insufficient_non_mated",
               TooFewImpostors("a rate of ", target, h.impostor.total()));
      return;
    case metrics::Availability::kNoMated:
      Withhold(c, "no_mated", "no genuine comparisons in the pool");
      return;
  }
}

// The recommended threshold over layout 2: the FNMR @ FMR threshold when the target is one of
// the derived targets, else the largest interpolated threshold whose FMR <= target.
RecommendedThresholdCell RecommendFromDerived(const metrics::DerivedMetrics& d, double target) {
  RecommendedThresholdCell cell;
  cell.target_fmr = target;
  if (d.impostor_total < static_cast<double>(metrics::MinimumTrialsFor(target))) {
    cell.reason = TooFewImpostors("calibrating for FMR ", target, d.impostor_total);
    return cell;
  }
  for (std::size_t k = 0; k < metrics::kDerivedFmrTargets.size(); ++k) {
    if (metrics::kDerivedFmrTargets[k] != target) continue;
    const metrics::DerivedRate& r = d.fnmr_at_fmr[k];
    if (!r.value) {
      cell.reason = "the pooled counts are too noisy to place a threshold for this FMR";
      return cell;
    }
    cell.available = true;
    cell.threshold = r.threshold;
    cell.predicted_fmr = r.achieved;
    cell.predicted_fnmr = r.value;
    return cell;
  }
  const metrics::BinLayout layout = *metrics::LayoutOf(metrics::kBinLayoutV2);
  auto fmr = [&](double t) {
    return metrics::SideCdf(layout, d.impostor, d.impostor_total, t,
                            metrics::CdfReading::kInterpolate);
  };
  double low = 0, high = metrics::kLayoutV2Top;
  if (fmr(high) > target) {
    for (int step = 0; step < 60; ++step) {
      const double mid = 0.5 * (low + high);
      (fmr(mid) <= target ? low : high) = mid;
    }
  } else {
    low = high;
  }
  cell.available = true;
  cell.threshold = low;
  cell.predicted_fmr = fmr(low);
  if (d.genuine_total > 0) {
    cell.predicted_fnmr = 1 - metrics::SideCdf(layout, d.genuine, d.genuine_total, low,
                                               metrics::CdfReading::kInterpolate);
  }
  return cell;
}

}  // namespace

HistogramPair PoolHistograms(const std::vector<HistogramPair>& parts) {
  HistogramPair pooled;
  for (const HistogramPair& p : parts) {
    pooled.genuine += p.genuine;
    pooled.impostor += p.impostor;
  }
  return pooled;
}

std::vector<DetPoint> DetCurve(const HistogramPair& h) {
  const double gt = h.genuine.total(), it = h.impostor.total();
  std::vector<DetPoint> points;
  if (!(gt > 0) || !(it > 0)) return points;
  double g_below = 0, i_below = 0;
  for (int k = 0; k <= metrics::kScoreBinCount; ++k) {
    const double threshold = k <= metrics::kScoreRegularBins
                                 ? metrics::kScoreBinEdges[static_cast<std::size_t>(k)]
                                 : metrics::kScoreBinEdges.back() + metrics::kScoreBinWidth;
    points.push_back(
        DetPoint{threshold, std::min(1.0, i_below / it), std::max(0.0, (gt - g_below) / gt)});
    if (k < metrics::kScoreBinCount) {
      g_below += h.genuine.count(k);
      i_below += h.impostor.count(k);
    }
  }
  return points;
}

std::vector<MetricCell> MetricsFromHistograms(EvaluationProtocol protocol, const HistogramPair& h) {
  std::vector<MetricCell> cells;
  for (const Slot& slot : SlotsFor(protocol)) {
    MetricCell c = Cell(slot);
    const std::string name = slot.name;
    if (name == "fnmr_at_fmr" || name == "fnir_at_fpir") {
      FillAtTarget(h, *slot.target, &c);
    } else if (name == "eer") {
      if (auto e = metrics::Eer(h.genuine, h.impostor)) {
        Release(&c, e->eer);
        c.threshold = e->threshold;
      } else {
        Withhold(&c, "no_mated", "needs both genuine and impostor comparisons");
      }
    } else if (name == "roc_auc") {
      if (auto a = metrics::RocAuc(h.genuine, h.impostor)) {
        Release(&c, *a);
      } else {
        Withhold(&c, "no_mated", "needs both genuine and impostor comparisons");
      }
    } else if (name == "rank1_identification_rate") {
      if (auto r = metrics::Rank1RateFromHistogram(h.genuine)) {
        Release(&c, *r);
      } else {
        Withhold(&c, "no_mated", "no mated searches in the pool");
      }
    } else {
      WithholdNotPooled(&c);
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

std::vector<MetricCell> MetricsFromRelease(const EvaluationRelease& r) {
  std::vector<MetricCell> cells;
  int fnmr_index = 0, fnir_index = 0;
  for (const Slot& slot : SlotsFor(r.protocol())) {
    MetricCell c = Cell(slot);
    const std::string name = slot.name;
    if (name == "fnmr_at_fmr") {
      const fedface::v1::FnmrAtFmr* m[] = {&r.fnmr_at_fmr_1e2(), &r.fnmr_at_fmr_1e3(),
                                           &r.fnmr_at_fmr_1e4()};
      const fedface::v1::FnmrAtFmr& f = *m[fnmr_index++];
      if (f.suppression() == fedface::v1::SUPPRESSION_NONE) {
        Release(&c, f.fnmr());
        c.threshold = f.threshold();
        c.achieved_rate = f.fmr();
      } else {
        FromSuppression(&c, f.suppression());
      }
    } else if (name == "fnir_at_fpir") {
      const fedface::v1::FnirAtFpir* m[] = {&r.fnir_at_fpir_1e2(), &r.fnir_at_fpir_1e1()};
      const fedface::v1::FnirAtFpir& f = *m[fnir_index++];
      if (f.suppression() == fedface::v1::SUPPRESSION_NONE) {
        Release(&c, f.fnir());
        c.threshold = f.threshold();
        c.achieved_rate = f.fpir();
      } else {
        FromSuppression(&c, f.suppression());
      }
    } else if (name == "eer") {
      if (r.eer().suppression() == fedface::v1::SUPPRESSION_NONE) {
        Release(&c, r.eer().eer());
        c.threshold = r.eer().threshold();
      } else {
        FromSuppression(&c, r.eer().suppression());
      }
    } else {
      const fedface::v1::Rate* rate = nullptr;
      if (name == "roc_auc") rate = &r.roc_auc();
      if (name == "rank1_identification_rate") rate = &r.rank1_identification_rate();
      if (name == "failure_to_enrol_rate") rate = &r.failure_to_enrol_rate();
      if (rate != nullptr) {
        if (rate->suppression() == fedface::v1::SUPPRESSION_NONE) {
          Release(&c, rate->value());
        } else {
          FromSuppression(&c, rate->suppression());
        }
      } else if (r.has_throughput() &&
                 r.throughput().suppression() == fedface::v1::SUPPRESSION_NONE) {
        Release(&c, r.throughput().embeddings_per_second());
      } else {
        FromSuppression(&c, r.has_throughput() ? r.throughput().suppression()
                                               : fedface::v1::SUPPRESSION_NOT_MEASURED);
      }
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

RecommendedThresholdCell RecommendFromPool(const HistogramPair& pooled, double target_fmr) {
  RecommendedThresholdCell cell;
  cell.target_fmr = target_fmr;
  const metrics::RecommendedThreshold r = metrics::RecommendThreshold(pooled.impostor, target_fmr);
  if (r.availability != metrics::Availability::kAvailable || !r.threshold) {
    cell.reason = TooFewImpostors("calibrating for FMR ", target_fmr, pooled.impostor.total());
    return cell;
  }
  cell.available = true;
  cell.threshold = r.threshold;
  cell.predicted_fmr = r.fmr;
  const metrics::ErrorRates at =
      metrics::ErrorRatesAt(pooled.genuine, pooled.impostor, *r.threshold);
  if (at.fnmr) cell.predicted_fnmr = at.fnmr;
  return cell;
}

std::optional<HistogramPair> HistogramsOf(const EvaluationRelease& release) {
  if (release.genuine_histogram().suppression() != fedface::v1::SUPPRESSION_NONE ||
      release.impostor_histogram().suppression() != fedface::v1::SUPPRESSION_NONE) {
    return std::nullopt;
  }
  const auto& g = release.genuine_histogram().counts();
  const auto& i = release.impostor_histogram().counts();
  absl::StatusOr<metrics::ScoreHistogram> genuine =
      metrics::ScoreHistogram::FromCounts(std::span<const double>(g.data(), g.size()));
  absl::StatusOr<metrics::ScoreHistogram> impostor =
      metrics::ScoreHistogram::FromCounts(std::span<const double>(i.data(), i.size()));
  if (!genuine.ok() || !impostor.ok()) return std::nullopt;
  return HistogramPair{*std::move(genuine), *std::move(impostor)};
}

metrics::ReleasedPair ReleasedPairOf(const EvaluationRelease& release,
                                     const HistogramPair& histograms) {
  metrics::ReleasedPair pair;
  pair.genuine.counts = histograms.genuine.counts();
  pair.impostor.counts = histograms.impostor.counts();
  const fedface::v1::PrivacyAccounting& privacy = release.privacy();
  if (privacy.differential_privacy() && privacy.epsilon() > 0) {
    // A release that states only epsilon and one bound c: 4c / epsilon on every count of both
    // histograms, the largest scale a mechanism with that c has used (substitution; add/remove
    // needs c + 3 floor(c / 2) <= 4c), so the intervals err on the wide side.
    const double scale = 4.0 * privacy.contribution_bound() / privacy.epsilon();
    pair.genuine.noise_scale = scale;
    pair.impostor.noise_scale = scale;
  }
  return pair;
}

std::optional<LayoutTwoCounts> LayoutTwoCountsOf(const EvaluationRelease& release) {
  if (release.bin_edges_version() != static_cast<uint32_t>(metrics::kBinLayoutV2) ||
      release.genuine_histogram().suppression() != fedface::v1::SUPPRESSION_NONE ||
      release.impostor_histogram().suppression() != fedface::v1::SUPPRESSION_NONE) {
    return std::nullopt;
  }
  const auto& g = release.genuine_histogram().counts();
  const auto& i = release.impostor_histogram().counts();
  if (g.size() != metrics::kLayoutV2Bins || i.size() != metrics::kLayoutV2Bins) return std::nullopt;
  return LayoutTwoCounts{{g.begin(), g.end()}, {i.begin(), i.end()}};
}

metrics::ReleasedPair ReleasedPairOfLayoutTwo(const EvaluationRelease& release,
                                              const LayoutTwoCounts& counts) {
  metrics::ReleasedPair pair;
  pair.genuine = {counts.genuine, release.privacy().genuine_noise_scale()};
  pair.impostor = {counts.impostor, release.privacy().impostor_noise_scale()};
  return pair;
}

absl::StatusOr<metrics::DerivedMetrics> DerivePooled(std::span<const metrics::ReleasedPair> parts) {
  std::vector<double> genuine(metrics::kLayoutV2Bins, 0.0), impostor(metrics::kLayoutV2Bins, 0.0);
  metrics::PublicNoise noise;
  for (const metrics::ReleasedPair& p : parts) {
    for (std::size_t k = 0; k < genuine.size() && k < p.genuine.counts.size(); ++k) {
      genuine[k] += p.genuine.counts[k];
    }
    for (std::size_t k = 0; k < impostor.size() && k < p.impostor.counts.size(); ++k) {
      impostor[k] += p.impostor.counts[k];
    }
    noise.genuine.scales.push_back(p.genuine.noise_scale);
    noise.impostor.scales.push_back(p.impostor.noise_scale);
  }
  return metrics::DeriveVerificationMetrics(metrics::kBinLayoutV2, genuine, impostor, noise);
}

std::vector<DetPoint> DetCurveOfLayout(const metrics::BinLayout& layout,
                                       std::span<const double> genuine,
                                       std::span<const double> impostor) {
  double gt = 0, it = 0;
  for (double v : genuine) gt += v;
  for (double v : impostor) it += v;
  std::vector<DetPoint> points;
  if (!(gt > 0) || !(it > 0)) return points;
  double g_below = 0, i_below = 0;
  for (int k = 0; k <= layout.bins; ++k) {
    points.push_back(DetPoint{layout.knots[static_cast<std::size_t>(k)],
                              std::clamp(i_below / it, 0.0, 1.0),
                              std::clamp((gt - g_below) / gt, 0.0, 1.0)});
    if (k < layout.bins) {
      g_below += genuine[static_cast<std::size_t>(k)];
      i_below += impostor[static_cast<std::size_t>(k)];
    }
  }
  return points;
}

std::vector<MetricCell> MetricsFromDerived(const metrics::DerivedMetrics& d) {
  std::vector<MetricCell> cells;
  for (const Slot& slot : SlotsFor(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION)) {
    MetricCell c = Cell(slot);
    const std::string name = slot.name;
    if (name == "fnmr_at_fmr") {
      for (std::size_t k = 0; k < metrics::kDerivedFmrTargets.size(); ++k) {
        if (metrics::kDerivedFmrTargets[k] == *slot.target) {
          FromDerived(d.fnmr_at_fmr[k], d.impostor_total, slot.target, &c);
        }
      }
    } else if (name == "eer") {
      FromDerived(d.eer, d.impostor_total, std::nullopt, &c);
      c.achieved_rate.reset();
    } else if (name == "roc_auc") {
      FromDerived(d.roc_auc, d.impostor_total, std::nullopt, &c);
      c.threshold.reset();
      c.achieved_rate.reset();
    } else {
      WithholdNotPooled(&c);
    }
    cells.push_back(std::move(c));
  }
  return cells;
}

void AttachIntervals(int layout_version, metrics::Consistency consistency,
                     std::span<const metrics::ReleasedPair> releases, uint64_t seed,
                     std::vector<MetricCell>* cells) {
  const absl::StatusOr<metrics::BinLayout> layout = metrics::LayoutOf(layout_version);
  if (releases.empty() || !layout.ok()) return;
  std::mt19937_64 rng(seed);
  const metrics::VerificationIntervals intervals = metrics::ComputeVerificationIntervals(
      *layout, releases, metrics::kStandardFmrTargets, consistency, rng);
  for (MetricCell& c : *cells) {
    if (!c.released) continue;
    std::optional<metrics::Interval> interval;
    if (c.name == "roc_auc") interval = intervals.roc_auc;
    if (c.name == "eer") interval = intervals.eer;
    if (c.name == "fnmr_at_fmr" && c.target) {
      for (std::size_t t = 0; t < metrics::kStandardFmrTargets.size(); ++t) {
        if (metrics::kStandardFmrTargets[t] == *c.target) interval = intervals.fnmr_at_fmr[t];
      }
    }
    if (c.name != "roc_auc" && c.name != "eer" && c.name != "fnmr_at_fmr") continue;
    c.interval = interval;
    // A released figure the bootstrap cannot bracket (mostly withheld in its replicates) is no
    // better supported than a too wide one.
    c.too_noisy = !interval || interval->width() > metrics::kTooNoisyIntervalWidth;
  }
}

RoundReport BuildRoundReport(const RoundRecord& record) {
  RoundReport report;
  report.record = record;
  report.contributed = ContributedCount(record);
  if (record.finished_at.empty()) {
    report.state = "running";
  } else {
    report.state = QuorumMet(record) ? "complete" : "quorum_not_met";
  }
  const EvaluationProtocol protocol = record.request.protocol;
  std::vector<HistogramPair> parts;
  std::vector<metrics::ReleasedPair> released;
  const bool verification = protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  // Stable per round, so a report reads the same each time it is built.
  const uint64_t seed = std::hash<std::string>{}(record.request.round_id);
  std::set<int> layouts;  // of the contributing releases
  for (const PartnerOutcome& o : record.outcomes) {
    PartnerRow row;
    row.outcome = o;
    if (o.release) {
      row.metrics = MetricsFromRelease(*o.release);
      row.layout_version = static_cast<int>(o.release->bin_edges_version());
      row.layout_two = LayoutTwoCountsOf(*o.release);
    }
    if (row.layout_two) {
      const metrics::ReleasedPair pair = ReleasedPairOfLayoutTwo(*o.release, *row.layout_two);
      if (absl::StatusOr<metrics::DerivedMetrics> d = DerivePooled(std::span(&pair, 1)); d.ok()) {
        row.det =
            DetCurveOfLayout(*metrics::LayoutOf(metrics::kBinLayoutV2), d->genuine, d->impostor);
      }
      AttachIntervals(metrics::kBinLayoutV2, metrics::Consistency::kAfterPooling,
                      std::span(&pair, 1), seed ^ std::hash<std::string>{}(o.partner.name),
                      &row.metrics);
      if (o.status == PartnerStatus::kContributed) {
        released.push_back(pair);
        layouts.insert(metrics::kBinLayoutV2);
        report.pooled.partners.push_back(o.partner.name);
      }
    } else if (o.release) {
      row.histograms = HistogramsOf(*o.release);
      if (row.histograms) row.det = DetCurve(*row.histograms);
      if (row.histograms && verification) {
        const metrics::ReleasedPair pair = ReleasedPairOf(*o.release, *row.histograms);
        AttachIntervals(metrics::kScoreBinEdgesVersion, metrics::Consistency::kPerRelease,
                        std::span(&pair, 1), seed ^ std::hash<std::string>{}(o.partner.name),
                        &row.metrics);
      }
    } else {
      for (const Slot& slot : SlotsFor(protocol)) {
        MetricCell c = Cell(slot);
        Withhold(&c, "no_release", o.reason);
        row.metrics.push_back(std::move(c));
      }
    }
    if (o.status == PartnerStatus::kContributed && row.histograms) {
      parts.push_back(*row.histograms);
      released.push_back(ReleasedPairOf(*o.release, *row.histograms));
      layouts.insert(metrics::kScoreBinEdgesVersion);
      report.pooled.partners.push_back(o.partner.name);
    }
    report.partners.push_back(std::move(row));
  }

  PooledRow& pooled = report.pooled;
  pooled.recommended.target_fmr = record.target_fmr;
  std::string withheld;
  if (report.state == "running") {
    withheld = "the round has not finished";
  } else if (!QuorumMet(record)) {
    withheld = absl::StrCat(
        "quorum not met: ", report.contributed, " of ", record.outcomes.size(),
        " partners contributed, the round needs ", record.quorum,
        "; pooled figures are withheld so that a few partners are never presented as the whole");
  } else if (layouts.size() > 1) {
    withheld =
        "the contributing partners released over different bin layouts (1 and 2): their "
        "histograms cannot be added, so nothing is pooled; every partner must run a release "
        "format that sends layout 2";
  }
  if (!withheld.empty()) {
    pooled.available = false;
    pooled.reason = withheld;
    const char* code = layouts.size() > 1 && QuorumMet(record) && report.state != "running"
                           ? "mixed_layouts"
                           : "quorum_not_met";
    for (const Slot& slot : SlotsFor(protocol)) {
      MetricCell c = Cell(slot);
      Withhold(&c, code, withheld);
      pooled.metrics.push_back(std::move(c));
    }
    pooled.recommended.reason = withheld;
    return report;
  }
  if (layouts.count(metrics::kBinLayoutV2)) {
    pooled.layout_version = metrics::kBinLayoutV2;
    absl::StatusOr<metrics::DerivedMetrics> d = DerivePooled(released);
    if (!d.ok()) {  // lengths were checked by CheckRelease: cannot happen
      pooled.reason = std::string(d.status().message());
      return report;
    }
    pooled.available = true;
    pooled.genuine_total = d->genuine_total;
    pooled.impostor_total = d->impostor_total;
    pooled.metrics = MetricsFromDerived(*d);
    AttachIntervals(metrics::kBinLayoutV2, metrics::Consistency::kAfterPooling, released, seed,
                    &pooled.metrics);
    pooled.det =
        DetCurveOfLayout(*metrics::LayoutOf(metrics::kBinLayoutV2), d->genuine, d->impostor);
    pooled.recommended = RecommendFromDerived(*d, record.target_fmr);
    pooled.layout_two = LayoutTwoCounts{d->genuine, d->impostor};
    return report;
  }
  pooled.layout_version = metrics::kScoreBinEdgesVersion;
  const HistogramPair h = PoolHistograms(parts);
  pooled.available = true;
  pooled.genuine_total = h.genuine.total();
  pooled.impostor_total = h.impostor.total();
  pooled.metrics = MetricsFromHistograms(protocol, h);
  if (verification) {
    AttachIntervals(metrics::kScoreBinEdgesVersion, metrics::Consistency::kPerRelease, released,
                    seed, &pooled.metrics);
  }
  pooled.det = DetCurve(h);
  pooled.recommended = RecommendFromPool(h, record.target_fmr);
  pooled.histograms = h;
  return report;
}

}  // namespace fedface::vendor
