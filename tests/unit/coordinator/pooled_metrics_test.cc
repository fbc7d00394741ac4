// The pooled metrics are those of the union of all partners' comparisons (DP off): three
// "partners" get known distance lists, each releases histograms of its own list, the vendor
// pools the releases, and every pooled figure is checked against a direct computation over the
// concatenated lists.
#include "model_vendor/coordinator/pooled_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "core/metrics/identification_metrics.h"
#include "core/metrics/verification_metrics.h"
#include "model_vendor/coordinator/report_table.h"
#include "tests/unit/coordinator/release_fixture.h"

namespace fedface::vendor {
namespace {

using testing::MakeKMinimumRelease;
using testing::MakeRelease;
using testing::NormalDistances;
using testing::TestRequest;

struct Comparisons {
  std::vector<double> genuine;
  std::vector<double> impostor;
};

// Three partners of different sizes and quality; together they have 31,000 impostor
// comparisons, enough for FMR 1e-4 (30,000), while none has enough alone.
std::vector<Comparisons> ThreePartners() {
  std::mt19937_64 rng(20240501);
  std::vector<Comparisons> p(3);
  p[0] = {NormalDistances(rng, 400, 0.42, 0.07), NormalDistances(rng, 12000, 0.92, 0.10)};
  p[1] = {NormalDistances(rng, 250, 0.47, 0.09), NormalDistances(rng, 10000, 0.88, 0.12)};
  p[2] = {NormalDistances(rng, 180, 0.40, 0.06), NormalDistances(rng, 9000, 0.95, 0.09)};
  return p;
}

Comparisons Union(const std::vector<Comparisons>& parts) {
  Comparisons u;
  for (const Comparisons& c : parts) {
    u.genuine.insert(u.genuine.end(), c.genuine.begin(), c.genuine.end());
    u.impostor.insert(u.impostor.end(), c.impostor.begin(), c.impostor.end());
  }
  return u;
}

PartnerOutcome Contributed(const std::string& name, const RoundRequest& request,
                           const Comparisons& c) {
  PartnerOutcome o;
  o.partner = {name, "127.0.0.1:1", "localhost"};
  o.status = PartnerStatus::kContributed;
  o.grpc_code = "OK";
  o.attempts = 1;
  o.release = MakeRelease(request, *metrics::ScoreHistogram::FromDistances(c.genuine),
                          *metrics::ScoreHistogram::FromDistances(c.impostor));
  o.egress = {1, 20, 1, static_cast<int64_t>(o.release->ByteSizeLong())};
  return o;
}

RoundRecord RecordOf(const std::vector<Comparisons>& parts, int quorum = 2) {
  RoundRecord rec;
  rec.request = TestRequest();
  rec.quorum = quorum;
  rec.target_fmr = 1e-3;
  rec.started_at = "2024-05-01T12:00:00Z";
  rec.finished_at = "2024-05-01T12:05:00Z";
  const char* names[] = {"acme", "globex", "initech", "umbrella"};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    rec.outcomes.push_back(Contributed(names[i], rec.request, parts[i]));
  }
  return rec;
}

// Direct counts over raw distances for the decision "match when distance < edge", which is
// what a threshold at a bin edge means for histograms.
double ShareBelow(const std::vector<double>& d, double edge) {
  return static_cast<double>(
             std::count_if(d.begin(), d.end(), [&](double x) { return x < edge; })) /
         static_cast<double>(d.size());
}

const MetricCell& Find(const std::vector<MetricCell>& cells, const std::string& name,
                       std::optional<double> target = std::nullopt) {
  for (const MetricCell& c : cells) {
    if (c.name == name && c.target == target) return c;
  }
  ADD_FAILURE() << "no metric " << name;
  static MetricCell none;
  return none;
}

TEST(PooledMetricsTest, PooledHistogramsEqualTheHistogramsOfTheUnionOfComparisons) {
  const std::vector<Comparisons> parts = ThreePartners();
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  ASSERT_TRUE(report.pooled.available) << report.pooled.reason;
  ASSERT_TRUE(report.pooled.histograms);
  const Comparisons u = Union(parts);
  const metrics::ScoreHistogram g = *metrics::ScoreHistogram::FromDistances(u.genuine);
  const metrics::ScoreHistogram i = *metrics::ScoreHistogram::FromDistances(u.impostor);
  for (int k = 0; k < metrics::kScoreBinCount; ++k) {
    EXPECT_EQ(report.pooled.histograms->genuine.count(k), g.count(k)) << "genuine bin " << k;
    EXPECT_EQ(report.pooled.histograms->impostor.count(k), i.count(k)) << "impostor bin " << k;
  }
  EXPECT_EQ(report.pooled.genuine_total, 830);
  EXPECT_EQ(report.pooled.impostor_total, 31000);
  EXPECT_EQ(report.pooled.partners, (std::vector<std::string>{"acme", "globex", "initech"}));
}

TEST(PooledMetricsTest, PooledFnmrAtFmrMatchesADirectCountOverTheUnion) {
  const std::vector<Comparisons> parts = ThreePartners();
  const Comparisons u = Union(parts);
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  for (double target : metrics::kStandardFmrTargets) {
    SCOPED_TRACE(target);
    const MetricCell& c = Find(report.pooled.metrics, "fnmr_at_fmr", target);
    ASSERT_TRUE(c.released) << c.reason;
    const double t = *c.threshold;
    const double direct_fmr = ShareBelow(u.impostor, t);
    const double direct_fnmr = 1 - ShareBelow(u.genuine, t);
    EXPECT_NEAR(*c.achieved_rate, direct_fmr, 1e-12);
    EXPECT_NEAR(*c.value, direct_fnmr, 1e-12);
    EXPECT_LE(direct_fmr, target);
    // The threshold is the LARGEST bin edge within the target: one bin further exceeds it.
    EXPECT_GT(ShareBelow(u.impostor, t + metrics::kScoreBinWidth), target);
  }
}

TEST(PooledMetricsTest, PooledRatesAgreeWithExactMetricsOverTheUnionWithinOneBin) {
  const std::vector<Comparisons> parts = ThreePartners();
  const Comparisons u = Union(parts);
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  absl::StatusOr<metrics::ComparisonScores> exact =
      metrics::ComparisonScores::FromDistances(u.genuine, u.impostor);
  ASSERT_TRUE(exact.ok());
  for (double target : metrics::kStandardFmrTargets) {
    SCOPED_TRACE(target);
    const metrics::FnmrAtFmr e = metrics::ComputeFnmrAtFmr(*exact, target);
    ASSERT_EQ(e.availability, metrics::Availability::kAvailable);
    const MetricCell& c = Find(report.pooled.metrics, "fnmr_at_fmr", target);
    // A bin-edge threshold sits at most one bin below the exact one, so FNMR can only be higher.
    EXPECT_LE(*c.threshold, e.point->threshold + 1e-12);
    EXPECT_GT(*c.threshold, e.point->threshold - metrics::kScoreBinWidth);
    EXPECT_GE(*c.value, e.point->fnmr - 1e-12);
  }
  const MetricCell& eer = Find(report.pooled.metrics, "eer");
  EXPECT_NEAR(*eer.value, metrics::Eer(*exact)->eer, 0.01);
  const MetricCell& auc = Find(report.pooled.metrics, "roc_auc");
  EXPECT_NEAR(*auc.value, *metrics::RocAuc(*exact), 0.002);
}

// Every released verification figure, pooled and per partner, carries a 95 % interval holding
// both the released value and the exact figure over the union (exact releases: sampling and
// binning only); a figure with a tight interval is shown as a number, and the table prints it.
TEST(PooledMetricsTest, ReleasedFiguresCarryIntervalsHoldingTheExactFigureOfTheUnion) {
  const std::vector<Comparisons> parts = ThreePartners();
  const Comparisons u = Union(parts);
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  absl::StatusOr<metrics::ComparisonScores> exact =
      metrics::ComparisonScores::FromDistances(u.genuine, u.impostor);
  ASSERT_TRUE(exact.ok());
  const MetricCell& auc = Find(report.pooled.metrics, "roc_auc");
  const MetricCell& eer = Find(report.pooled.metrics, "eer");
  const MetricCell& fnmr = Find(report.pooled.metrics, "fnmr_at_fmr", 1e-2);
  for (const MetricCell* c : {&auc, &eer, &fnmr}) {
    SCOPED_TRACE(c->label);
    ASSERT_TRUE(c->interval.has_value());
    EXPECT_TRUE(c->interval->Contains(*c->value));
    EXPECT_FALSE(c->too_noisy);
  }
  EXPECT_TRUE(auc.interval->Contains(*metrics::RocAuc(*exact)));
  EXPECT_TRUE(eer.interval->Contains(metrics::Eer(*exact)->eer));
  EXPECT_TRUE(fnmr.interval->Contains(metrics::ComputeFnmrAtFmr(*exact, 1e-2).point->fnmr));
  EXPECT_FALSE(Find(report.pooled.metrics, "failure_to_enrol_rate").interval.has_value());
  for (const PartnerRow& row : report.partners) {
    EXPECT_TRUE(Find(row.metrics, "roc_auc").interval.has_value()) << row.outcome.partner.name;
  }
  const std::string table = RoundReportTable(report);
  EXPECT_TRUE(absl::StrContains(table, absl::StrFormat("%.4f [%.3f, %.3f]", *auc.value,
                                                       auc.interval->low, auc.interval->high)))
      << table;
  EXPECT_TRUE(absl::StrContains(table, "95 % interval from public values only")) << table;
}

// A figure whose interval is wider than kTooNoisyIntervalWidth is never printed as a number.
TEST(PooledMetricsTest, AFigureWithAWideIntervalIsShownAsTooNoisy) {
  std::mt19937_64 rng(3);
  std::vector<Comparisons> parts(2);
  for (Comparisons& c : parts) {
    c = {NormalDistances(rng, 6, 0.55, 0.10), NormalDistances(rng, 8, 0.65, 0.10)};
  }
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  const MetricCell& eer = Find(report.pooled.metrics, "eer");
  ASSERT_TRUE(eer.released);
  ASSERT_TRUE(eer.interval.has_value());
  EXPECT_GT(eer.interval->width(), metrics::kTooNoisyIntervalWidth);
  EXPECT_TRUE(eer.too_noisy);
  const std::string table = RoundReportTable(report);
  EXPECT_TRUE(absl::StrContains(table, "too noisy")) << table;
  EXPECT_FALSE(absl::StrContains(table, absl::StrFormat("%.4f", *eer.value))) << table;
}

TEST(PooledMetricsTest, RecommendedThresholdIsTheLargestEdgeWithinTheTargetFmrOfTheUnion) {
  const std::vector<Comparisons> parts = ThreePartners();
  const Comparisons u = Union(parts);
  RoundRecord rec = RecordOf(parts);
  rec.target_fmr = 2e-3;
  const RoundReport report = BuildRoundReport(rec);
  const RecommendedThresholdCell& rt = report.pooled.recommended;
  ASSERT_TRUE(rt.available) << rt.reason;
  EXPECT_EQ(rt.target_fmr, 2e-3);
  EXPECT_LE(ShareBelow(u.impostor, *rt.threshold), 2e-3);
  EXPECT_GT(ShareBelow(u.impostor, *rt.threshold + metrics::kScoreBinWidth), 2e-3);
  EXPECT_NEAR(*rt.predicted_fmr, ShareBelow(u.impostor, *rt.threshold), 1e-12);
  EXPECT_NEAR(*rt.predicted_fnmr, 1 - ShareBelow(u.genuine, *rt.threshold), 1e-12);
}

TEST(PooledMetricsTest, PoolingReachesAnOperatingPointNoSinglePartnerCanSupport) {
  const RoundReport report = BuildRoundReport(RecordOf(ThreePartners()));
  for (const PartnerRow& row : report.partners) {
    const MetricCell& c = Find(row.metrics, "fnmr_at_fmr", 1e-4);
    EXPECT_FALSE(c.released) << row.outcome.partner.name;
    EXPECT_EQ(c.suppression, "insufficient_non_mated");
    EXPECT_NE(c.reason.find("impostor"), std::string::npos) << c.reason;
  }
  EXPECT_TRUE(Find(report.pooled.metrics, "fnmr_at_fmr", 1e-4).released);
}

TEST(PooledMetricsTest, DetCurveOfThePoolIsTheDirectCurveOfTheUnion) {
  const std::vector<Comparisons> parts = ThreePartners();
  const Comparisons u = Union(parts);
  const RoundReport report = BuildRoundReport(RecordOf(parts));
  ASSERT_EQ(report.pooled.det.size(), static_cast<std::size_t>(metrics::kScoreBinCount + 1));
  for (std::size_t k = 0; k + 1 < report.pooled.det.size(); ++k) {
    const DetPoint& p = report.pooled.det[k];
    EXPECT_NEAR(p.fmr, ShareBelow(u.impostor, p.threshold), 1e-12) << k;
    EXPECT_NEAR(p.fnmr, 1 - ShareBelow(u.genuine, p.threshold), 1e-12) << k;
  }
  EXPECT_EQ(report.pooled.det.front().fmr, 0);
  EXPECT_EQ(report.pooled.det.back().fmr, 1);
  EXPECT_EQ(report.pooled.det.back().fnmr, 0);
}

TEST(PooledMetricsTest, PartnersThatDidNotContributeStayOutOfThePoolWithTheirReasons) {
  const std::vector<Comparisons> parts = ThreePartners();
  RoundRecord rec = RecordOf(parts);
  PartnerOutcome small;
  small.partner = {"tiny", "127.0.0.1:2", "localhost"};
  small.status = PartnerStatus::kWithheld;
  small.reason = "withheld by the partner's k-minimum rule";
  small.release = MakeKMinimumRelease(rec.request);
  PartnerOutcome down;
  down.partner = {"down", "127.0.0.1:3", "localhost"};
  down.status = PartnerStatus::kUnreachable;
  down.reason = "unreachable after 4 attempts: connection refused";
  rec.outcomes.push_back(small);
  rec.outcomes.push_back(down);

  const RoundReport report = BuildRoundReport(rec);
  EXPECT_EQ(report.state, "complete");
  EXPECT_EQ(report.contributed, 3);
  EXPECT_EQ(report.pooled.genuine_total, 830);
  ASSERT_EQ(report.partners.size(), 5u);
  for (const MetricCell& c : report.partners[3].metrics) {
    EXPECT_FALSE(c.released);
    EXPECT_TRUE(c.suppression == "cohort_below_k" || c.suppression == "not_in_protocol")
        << c.name << " " << c.suppression;
    EXPECT_FALSE(c.reason.empty());
  }
  EXPECT_FALSE(report.partners[3].histograms);
  for (const MetricCell& c : report.partners[4].metrics) {
    EXPECT_FALSE(c.released);
    EXPECT_EQ(c.suppression, "no_release");
    EXPECT_EQ(c.reason, down.reason);
  }
}

TEST(PooledMetricsTest, QuorumNotMetWithholdsEveryPooledFigureWithTheReason) {
  const std::vector<Comparisons> parts = ThreePartners();
  RoundRecord rec = RecordOf({parts[0]}, /*quorum=*/2);
  PartnerOutcome down;
  down.partner = {"down", "127.0.0.1:3", "localhost"};
  down.status = PartnerStatus::kTimedOut;
  down.reason = "no answer within the deadline";
  rec.outcomes.push_back(down);
  const RoundReport report = BuildRoundReport(rec);
  EXPECT_EQ(report.state, "quorum_not_met");
  EXPECT_FALSE(report.pooled.available);
  EXPECT_NE(report.pooled.reason.find("1 of 2 partners contributed"), std::string::npos)
      << report.pooled.reason;
  EXPECT_FALSE(report.pooled.histograms);
  EXPECT_FALSE(report.pooled.recommended.available);
  for (const MetricCell& c : report.pooled.metrics) {
    EXPECT_FALSE(c.released) << c.name;
    EXPECT_EQ(c.suppression, "quorum_not_met");
  }
  // The partner that did answer keeps its own row.
  EXPECT_TRUE(Find(report.partners[0].metrics, "eer").released);
}

TEST(PooledMetricsTest, IdentificationPoolsRank1AndFnirFromHistogramsOfTheUnion) {
  std::mt19937_64 rng(7);
  std::vector<std::vector<metrics::MatedSearch>> mated(3);
  std::vector<std::vector<metrics::NonMatedSearch>> non_mated(3);
  std::uniform_real_distribution<double> u01(0, 1);
  for (int p = 0; p < 3; ++p) {
    for (int s = 0; s < 150 + 50 * p; ++s) {
      metrics::MatedSearch m;
      if (u01(rng) < 0.93)
        m.mate_rank = 1;
      else if (u01(rng) < 0.5)
        m.mate_rank = 3;
      m.mate_distance = NormalDistances(rng, 1, 0.45, 0.08)[0];
      mated[p].push_back(m);
    }
    for (double d : NormalDistances(rng, 400 + 100 * p, 0.8, 0.1)) {
      non_mated[p].push_back({d});
    }
  }
  RoundRecord rec;
  rec.request = TestRequest("ident-1", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION);
  rec.quorum = 3;
  rec.started_at = rec.finished_at = "2024-05-01T12:00:00Z";
  std::vector<metrics::MatedSearch> all_mated;
  std::vector<metrics::NonMatedSearch> all_non_mated;
  for (int p = 0; p < 3; ++p) {
    PartnerOutcome o;
    o.partner = {absl::StrCat("p", p), "127.0.0.1:1", "localhost"};
    o.status = PartnerStatus::kContributed;
    o.release = MakeRelease(rec.request, metrics::Rank1MateHistogram(mated[p]),
                            metrics::BestCandidateHistogram(non_mated[p]));
    rec.outcomes.push_back(o);
    all_mated.insert(all_mated.end(), mated[p].begin(), mated[p].end());
    all_non_mated.insert(all_non_mated.end(), non_mated[p].begin(), non_mated[p].end());
  }
  const RoundReport report = BuildRoundReport(rec);
  ASSERT_TRUE(report.pooled.available) << report.pooled.reason;

  const double direct_rank1 =
      static_cast<double>(std::count_if(all_mated.begin(), all_mated.end(),
                                        [](const auto& m) { return m.mate_rank == 1; })) /
      static_cast<double>(all_mated.size());
  EXPECT_NEAR(*Find(report.pooled.metrics, "rank1_identification_rate").value, direct_rank1, 1e-12);
  for (double target : metrics::kStandardFpirTargets) {
    SCOPED_TRACE(target);
    const MetricCell& c = Find(report.pooled.metrics, "fnir_at_fpir", target);
    ASSERT_TRUE(c.released) << c.reason;
    const double t = *c.threshold;
    const double fpir =
        static_cast<double>(std::count_if(all_non_mated.begin(), all_non_mated.end(),
                                          [&](const auto& s) { return *s.best_distance < t; })) /
        static_cast<double>(all_non_mated.size());
    const double hits =
        static_cast<double>(std::count_if(all_mated.begin(), all_mated.end(), [&](const auto& m) {
          return m.mate_rank == 1 && m.mate_distance < t;
        }));
    EXPECT_NEAR(*c.achieved_rate, fpir, 1e-12);
    EXPECT_NEAR(*c.value, 1 - hits / static_cast<double>(all_mated.size()), 1e-12);
    EXPECT_LE(fpir, target);
  }
}

// ---- Bin layout 2 (issue 12) ----

// Three partners releasing over layout 2 at epsilon 1 (c_g 10, c_i 64): populations of tens of
// thousands of comparisons, as the mechanism is meant for.
RoundRecord LayoutTwoRecord(const std::vector<Comparisons>& parts, std::mt19937_64& rng) {
  RoundRecord rec = RecordOf(parts);
  for (std::size_t p = 0; p < parts.size(); ++p) {
    rec.outcomes[p].release =
        testing::MakeLayoutTwoRelease(rec.request, parts[p].genuine, parts[p].impostor, {}, rng);
  }
  return rec;
}

std::vector<Comparisons> LargePartners(std::mt19937_64& rng) {
  std::vector<Comparisons> p(3);
  p[0] = {NormalDistances(rng, 40000, 0.44, 0.07), NormalDistances(rng, 1200000, 0.83, 0.075)};
  p[1] = {NormalDistances(rng, 30000, 0.46, 0.08), NormalDistances(rng, 1000000, 0.82, 0.08)};
  p[2] = {NormalDistances(rng, 20000, 0.43, 0.07), NormalDistances(rng, 900000, 0.84, 0.07)};
  return p;
}

TEST(PooledMetricsTest, LayoutTwoPoolsRawCountsWithOneScalePerPartnerAndStatesIntervals) {
  std::mt19937_64 rng(12);
  const std::vector<Comparisons> parts = LargePartners(rng);
  RoundRecord rec = LayoutTwoRecord(parts, rng);
  rec.target_fmr = 1e-2;
  const RoundReport report = BuildRoundReport(rec);
  ASSERT_TRUE(report.pooled.available) << report.pooled.reason;
  EXPECT_EQ(report.pooled.layout_version, 2);
  EXPECT_EQ(report.pooled.partners.size(), 3u);

  // The pool is DeriveVerificationMetrics over the bin-by-bin sum of the RAW counts, with one
  // public scale per partner per side.
  std::vector<double> g(metrics::kLayoutV2Bins, 0.0), i(metrics::kLayoutV2Bins, 0.0);
  metrics::PublicNoise noise;
  for (const PartnerOutcome& o : rec.outcomes) {
    for (int k = 0; k < metrics::kLayoutV2Bins; ++k) {
      g[k] += o.release->genuine_histogram().counts(k);
      i[k] += o.release->impostor_histogram().counts(k);
    }
    noise.genuine.scales.push_back(o.release->privacy().genuine_noise_scale());
    noise.impostor.scales.push_back(o.release->privacy().impostor_noise_scale());
  }
  const metrics::DerivedMetrics d = *metrics::DeriveVerificationMetrics(2, g, i, noise);
  EXPECT_EQ(report.pooled.genuine_total, d.genuine_total);
  EXPECT_EQ(report.pooled.impostor_total, d.impostor_total);
  ASSERT_TRUE(report.pooled.layout_two.has_value());
  EXPECT_EQ(report.pooled.layout_two->genuine, d.genuine);
  const MetricCell& auc = Find(report.pooled.metrics, "roc_auc");
  ASSERT_TRUE(auc.released);
  EXPECT_EQ(*auc.value, *d.roc_auc.value);
  const MetricCell& fnmr = Find(report.pooled.metrics, "fnmr_at_fmr", 1e-2);
  ASSERT_TRUE(fnmr.released) << fnmr.reason;
  EXPECT_EQ(*fnmr.value, *d.fnmr_at_fmr[0].value);
  EXPECT_EQ(*fnmr.threshold, *d.fnmr_at_fmr[0].threshold);

  // Every released verification figure carries an interval that holds the exact figure of the
  // union of all comparisons.
  const Comparisons u = Union(parts);
  const auto all = *metrics::ComparisonScores::FromDistances(u.genuine, u.impostor);
  const std::pair<const MetricCell*, double> truths[] = {
      {&auc, *metrics::RocAuc(all)},
      {&Find(report.pooled.metrics, "eer"), metrics::Eer(all)->eer},
      {&fnmr, metrics::ComputeFnmrAtFmr(all, 1e-2).point->fnmr}};
  for (const auto& [cell, truth] : truths) {
    ASSERT_TRUE(cell->interval.has_value()) << cell->label;
    EXPECT_FALSE(cell->too_noisy) << cell->label;
    EXPECT_TRUE(cell->interval->Contains(truth))
        << cell->label << " " << truth << " not in [" << cell->interval->low << ", "
        << cell->interval->high << "]";
  }
  // Curves come from the consistent counts: one point per knot, the pool's and each partner's.
  EXPECT_EQ(report.pooled.det.size(), static_cast<std::size_t>(metrics::kLayoutV2Bins + 1));
  for (const PartnerRow& row : report.partners) {
    EXPECT_EQ(row.layout_version, 2);
    EXPECT_TRUE(row.layout_two.has_value());
    EXPECT_FALSE(row.histograms.has_value());
    EXPECT_EQ(row.det.size(), static_cast<std::size_t>(metrics::kLayoutV2Bins + 1));
  }
  // The recommended threshold for FMR 1e-2 is the pooled FNMR @ FMR 1e-2 operating point.
  ASSERT_TRUE(report.pooled.recommended.available) << report.pooled.recommended.reason;
  EXPECT_EQ(*report.pooled.recommended.threshold, *fnmr.threshold);
  // The table shows value [low, high].
  const std::string table = RoundReportTable(report);
  EXPECT_TRUE(absl::StrContains(table, absl::StrFormat("%.4f [", *auc.value))) << table;
  EXPECT_TRUE(absl::StrContains(table, "bin layout 2")) << table;
}

TEST(PooledMetricsTest, LayoutTwoFiguresTheNoiseSwampsAreShownAsTooNoisy) {
  // 600 genuine and 3000 impostor comparisons per partner at epsilon 1: the public rule
  // withholds the EER.
  std::mt19937_64 rng(5);
  std::vector<Comparisons> parts(3);
  for (Comparisons& c : parts) {
    c = {NormalDistances(rng, 600, 0.44, 0.07), NormalDistances(rng, 3000, 0.83, 0.075)};
  }
  const RoundReport report = BuildRoundReport(LayoutTwoRecord(parts, rng));
  ASSERT_TRUE(report.pooled.available);
  const MetricCell& eer = Find(report.pooled.metrics, "eer");
  EXPECT_FALSE(eer.released);
  EXPECT_TRUE(eer.too_noisy);
  EXPECT_EQ(eer.suppression, "too_noisy");
  const std::string table = RoundReportTable(report);
  EXPECT_TRUE(absl::StrContains(table, "too noisy")) << table;
}

TEST(PooledMetricsTest, ARoundMixingLayoutsIsNotPooledAndSaysWhy) {
  std::mt19937_64 rng(8);
  const std::vector<Comparisons> parts = ThreePartners();
  RoundRecord rec = RecordOf(parts, /*quorum=*/2);
  // acme and globex send layout 2, initech still layout 1.
  for (int p = 0; p < 2; ++p) {
    rec.outcomes[p].release =
        testing::MakeLayoutTwoRelease(rec.request, parts[p].genuine, parts[p].impostor, {}, rng);
  }
  const RoundReport report = BuildRoundReport(rec);
  EXPECT_EQ(report.state, "complete");
  EXPECT_FALSE(report.pooled.available);
  EXPECT_TRUE(absl::StrContains(report.pooled.reason, "different bin layouts"))
      << report.pooled.reason;
  for (const MetricCell& c : report.pooled.metrics) {
    EXPECT_FALSE(c.released);
    EXPECT_EQ(c.suppression, "mixed_layouts");
  }
  EXPECT_FALSE(report.pooled.recommended.available);
  // Each partner's own figures are still shown.
  EXPECT_TRUE(report.partners[0].layout_two.has_value());
  EXPECT_TRUE(report.partners[2].histograms.has_value());
  EXPECT_TRUE(absl::StrContains(RoundReportTable(report), "different bin layouts"));
}

}  // namespace
}  // namespace fedface::vendor
