// The round's results as the report shows them: one row per partner (the metrics its guard
// released, each with a reason when withheld) and the POOLED row, computed by the vendor from
// the sum of the contributing partners' genuine and impostor histograms:
//
//   pooled genuine  = sum over contributing partners of their genuine histograms (bin by bin)
//   pooled impostor = sum of their impostor histograms
//
// Every bin of every histogram is over the same fixed edges (core/metrics/score_histogram.h), so
// the pooled histograms are exactly the histograms of the union of all partners' comparisons
// (with DP off; with DP on, the sum of their noisy versions). From them, with the same metric
// library the partners use: the DET/ROC curve, FNMR at FMR 1e-2/1e-3/1e-4, EER, ROC AUC
// (verification) or rank-1 rate and FNIR at FPIR 1e-2/1e-1 (identification), and the
// recommended global threshold for the round's target FMR (federated threshold calibration).
// The pooled row is withheld, with the reason, when the round's quorum is not met.
//
// Bin layout 2 (verification under differential privacy, release_derivation.h): partners
// release RAW noisy counts over 21 fixed bins with their public noise scales. The pool is the
// bin-by-bin sum of the raw counts (unbiased: nobody clamped), its noise one discrete Laplace
// scale per partner per side (metrics::PublicNoise), and every figure comes from
// metrics::DeriveVerificationMetrics (consistency step, interpolation, the public too-noisy rule)
// with its interval from metric_intervals (consistency after pooling). A round whose
// contributing partners released over different layouts is not pooled (their bins cannot be
// added); the pooled row says so.
//
// Thread safety: pure functions over value types.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/metric_intervals.h"
#include "core/metrics/score_histogram.h"
#include "model_vendor/coordinator/round_record.h"

namespace fedface::vendor {

// One metric of one row. When !released, `value` and the rest are absent and `suppression` (a
// code, see SuppressionCode, or vendor-side "quorum_not_met" / "not_pooled" /
// "partner_did_not_answer") and `reason` (a sentence) say why.
struct MetricCell {
  std::string name;              // "fnmr_at_fmr", "eer", "roc_auc", "rank1_identification_rate",
                                 // "fnir_at_fpir", "failure_to_enrol_rate", "throughput"
  std::string label;             // for people: "FNMR @ FMR 1e-3"
  std::optional<double> target;  // the FMR / FPIR target of *_at_* metrics
  bool released = false;
  std::optional<double> value;          // the rate (or embeddings per second for throughput)
  std::optional<double> threshold;      // distance threshold behind it, when it has one
  std::optional<double> achieved_rate;  // FMR / FPIR achieved at that threshold
  std::string suppression = "none";
  std::string reason;
  // Verification figures computed from histograms: the 95 % interval from public values only
  // (core/metrics/metric_intervals.h), and whether it is wider than kTooNoisyIntervalWidth, in
  // which case the report shows "too noisy" instead of the value.
  std::optional<metrics::Interval> interval;
  bool too_noisy = false;
};

// One point of a DET curve: the rates when deciding "match" below a bin edge.
struct DetPoint {
  double threshold;
  double fmr;
  double fnmr;
};

struct HistogramPair {
  metrics::ScoreHistogram genuine;
  metrics::ScoreHistogram impostor;
};

// Both histograms of a layout-2 release (raw noisy counts, may be negative), or of the pool
// after the consistency step.
struct LayoutTwoCounts {
  std::vector<double> genuine;
  std::vector<double> impostor;
};

struct PartnerRow {
  PartnerOutcome outcome;
  std::vector<MetricCell> metrics;            // empty when the partner sent no release
  int layout_version = 0;                     // the release's bin_edges_version (0: none)
  std::optional<HistogramPair> histograms;    // both released, layout 1
  std::optional<LayoutTwoCounts> layout_two;  // both released, layout 2 (raw)
  std::vector<DetPoint> det;                  // from `histograms`; empty without them
};

struct RecommendedThresholdCell {
  double target_fmr = 1e-3;
  bool available = false;
  std::optional<double> threshold;
  std::optional<double> predicted_fmr;   // pooled FMR at that threshold
  std::optional<double> predicted_fnmr;  // pooled FNMR at that threshold
  std::string reason;                    // when !available
};

struct PooledRow {
  bool available = false;
  std::string reason;                 // when !available
  std::vector<std::string> partners;  // names of the contributing partners
  double genuine_total = 0;           // pooled histogram masses (noisy when DP is on)
  double impostor_total = 0;
  std::vector<MetricCell> metrics;
  int layout_version = 0;                     // of the pooled releases (0: nothing pooled)
  std::optional<HistogramPair> histograms;    // layout 1
  std::optional<LayoutTwoCounts> layout_two;  // layout 2: the pooled counts made consistent
  std::vector<DetPoint> det;
  RecommendedThresholdCell recommended;
};

struct RoundReport {
  RoundRecord record;
  std::string state;  // "complete" (quorum met), "quorum_not_met", "running"
  int contributed = 0;
  std::vector<PartnerRow> partners;
  PooledRow pooled;
};

// Pools the contributing partners' histograms. REQUIRES every release in `record` passed
// CheckRelease (the runner and the rounds store guarantee it).
HistogramPair PoolHistograms(const std::vector<HistogramPair>& parts);

// The DET curve of a histogram pair: one point per bin edge k = 0..kScoreBinCount ("match" =
// bins below k), FMR and FNMR as shares of each side's total. Empty when a side is empty.
std::vector<DetPoint> DetCurve(const HistogramPair& h);

// The protocol's metrics computed from histograms (what the pooled row shows).
std::vector<MetricCell> MetricsFromHistograms(fedface::v1::EvaluationProtocol protocol,
                                              const HistogramPair& h);

// The metrics of one partner's release, as the partner's guard released them.
std::vector<MetricCell> MetricsFromRelease(const fedface::v1::EvaluationRelease& release);

// The recommended threshold for `target_fmr` from the pooled impostor histogram.
RecommendedThresholdCell RecommendFromPool(const HistogramPair& pooled, double target_fmr);

// The public description of a release's histograms for the intervals: its counts and the noise
// scale its privacy accounting states (0 without differential privacy).
metrics::ReleasedPair ReleasedPairOf(const fedface::v1::EvaluationRelease& release,
                                     const HistogramPair& histograms);

// Sets `interval` and `too_noisy` on the released verification cells (FNMR @ FMR, EER, ROC AUC)
// from the intervals of `releases` (one: a partner's own; several: the pool) over the bins of
// `layout_version`. `seed` makes a report's intervals the same each time it is built.
void AttachIntervals(int layout_version, metrics::Consistency consistency,
                     std::span<const metrics::ReleasedPair> releases, uint64_t seed,
                     std::vector<MetricCell>* cells);

// ---- Bin layout 2 ----
// The raw counts of a layout-2 release that passed CheckRelease with both histograms released;
// nullopt otherwise.
std::optional<LayoutTwoCounts> LayoutTwoCountsOf(const fedface::v1::EvaluationRelease& release);
// Its public description for the intervals: the counts and the scales fields 6 and 7 state.
metrics::ReleasedPair ReleasedPairOfLayoutTwo(const fedface::v1::EvaluationRelease& release,
                                              const LayoutTwoCounts& counts);
// The pool: raw counts summed bin by bin, one public scale per release per side, derived.
absl::StatusOr<metrics::DerivedMetrics> DerivePooled(std::span<const metrics::ReleasedPair> parts);
// The DET curve of consistent counts over `layout`: one point per knot.
std::vector<DetPoint> DetCurveOfLayout(const metrics::BinLayout& layout,
                                       std::span<const double> genuine,
                                       std::span<const double> impostor);
// The verification cells of derived metrics (FTE and throughput are not pooled).
std::vector<MetricCell> MetricsFromDerived(const metrics::DerivedMetrics& derived);

// Everything the report shows.
RoundReport BuildRoundReport(const RoundRecord& record);

// Histograms of a release that passed CheckRelease and has both released; nullopt otherwise.
std::optional<HistogramPair> HistogramsOf(const fedface::v1::EvaluationRelease& release);

}  // namespace fedface::vendor
