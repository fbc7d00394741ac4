#include "model_vendor/coordinator/pooled_metrics.h"

#include <cmath>
#include <functional>
#include <random>

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
               absl::StrCat("too few impostor comparisons: a rate of ", TargetText(target),
                            " needs at least ", m.non_mated_needed, ", the pool has ",
                            Count(h.impostor.total())));
      return;
    case metrics::Availability::kNoMated:
      Withhold(c, "no_mated", "no genuine comparisons in the pool");
      return;
  }
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
    } else if (name == "failure_to_enrol_rate") {
      Withhold(&c, "not_pooled",
               "not pooled: partners release their image counts only as bands, so their rates "
               "cannot be weighted into one");
    } else {
      Withhold(&c, "not_pooled", "not pooled: each partner measures on its own machines");
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
    cell.reason =
        absl::StrCat("too few impostor comparisons: calibrating for FMR ", TargetText(target_fmr),
                     " needs at least ", metrics::MinimumTrialsFor(target_fmr), ", the pool has ",
                     Count(pooled.impostor.total()));
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
  for (const PartnerOutcome& o : record.outcomes) {
    PartnerRow row;
    row.outcome = o;
    if (o.release) {
      row.metrics = MetricsFromRelease(*o.release);
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
  }
  if (!withheld.empty()) {
    pooled.available = false;
    pooled.reason = withheld;
    for (const Slot& slot : SlotsFor(protocol)) {
      MetricCell c = Cell(slot);
      Withhold(&c, "quorum_not_met", withheld);
      pooled.metrics.push_back(std::move(c));
    }
    pooled.recommended.reason = withheld;
    return report;
  }
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
