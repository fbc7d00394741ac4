// Issue 12, "done when": over galleries shaped like the demo's (four partners of 7 subjects with
// 5 images each: 280 mated and 2,100 non-mated comparisons, distances drawn from the normal fit
// to the distances measured on ../shared/datasets, bench/privacy_utility_fit.txt), 20 rounds run
// with fresh noise on the ENGINE-FREE release path — the production planner and contribution
// bounding (PlanVerificationComparisons, ContributionBoundedHistograms), the production egress
// composition with the demo's differential privacy (ComposeRelease: release layout 2, noise from
// the CSPRNG, epsilon 80, c_g = 10, c_i = 6, k = 5), the vendor's release check and the
// coordinator's pooling and intervals (BuildRoundReport) — give a pooled result within its
// stated intervals of the local truth (the exact metrics over every comparison of the four
// galleries) in at least 19 of 20, and the EER and ROC AUC are figures (not "too noisy") in
// most rounds.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <vector>

#include "core/metrics/verification_metrics.h"
#include "model_vendor/coordinator/pooled_metrics.h"
#include "model_vendor/coordinator/release_check.h"
#include "model_vendor/coordinator/round_settings.h"
#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/release_composer.h"
#include "tests/unit/coordinator/release_fixture.h"

namespace fedface::vendor {
namespace {

using partner::AttributedScore;
using partner::EvaluationAggregate;

constexpr int kPartners = 4, kSubjects = 7, kImages = 5;
// bench/privacy_utility_fit.txt (faceapi-bbt, all pairs).
constexpr double kGenuineMean = 0.436784, kGenuineSd = 0.069905;
constexpr double kImpostorMean = 0.829237, kImpostorSd = 0.075384;
// scripts/demo.sh's privacy settings.
// scripts/demo.sh's privacy settings: release layout 2 with c_g = 10 (every mated pair of 5
// images), c_i = 6 (a 7-subject ring: every subject pair once), the default 1:4 split.
constexpr double kDemoEpsilon = 80.0;
constexpr int kDemoBound = 5, kDemoK = 5;
constexpr partner::VerificationBounds kDemoBounds{10, 6};
constexpr double kDemoShare = 0.8;

// One partner's gallery, as distances between every two of its images (engine-free).
struct Gallery {
  int64_t first_key = 0;
  // distance[(s * kImages + a) * kSubjects * kImages + t * kImages + b]
  std::vector<double> distance;
  double At(int64_t s, int a, int64_t t, int b) const {
    const auto x = static_cast<std::size_t>((s - first_key) * kImages + a);
    const auto y = static_cast<std::size_t>((t - first_key) * kImages + b);
    return distance[x * kSubjects * kImages + y];
  }
};

Gallery MakeGallery(int64_t first_key, std::mt19937_64& rng) {
  Gallery g;
  g.first_key = first_key;
  const int n = kSubjects * kImages;
  g.distance.assign(static_cast<std::size_t>(n * n), 0.0);
  std::normal_distribution<double> genuine(kGenuineMean, kGenuineSd);
  std::normal_distribution<double> impostor(kImpostorMean, kImpostorSd);
  for (int x = 0; x < n; ++x) {
    for (int y = x + 1; y < n; ++y) {
      const double d = std::max(0.0, x / kImages == y / kImages ? genuine(rng) : impostor(rng));
      g.distance[static_cast<std::size_t>(x * n + y)] = d;
      g.distance[static_cast<std::size_t>(y * n + x)] = d;
    }
  }
  return g;
}

// Every mated and non-mated comparison of a gallery (what `partner_node evaluate` measures).
void AllComparisons(const Gallery& g, std::vector<double>* mated, std::vector<double>* non_mated) {
  const int n = kSubjects * kImages;
  for (int x = 0; x < n; ++x) {
    for (int y = x + 1; y < n; ++y) {
      (x / kImages == y / kImages ? mated : non_mated)
          ->push_back(g.distance[static_cast<std::size_t>(x * n + y)]);
    }
  }
}

// What the verification protocol hands the guard under differential privacy, from the gallery's
// distances instead of an engine's embeddings.
EvaluationAggregate AggregateOf(const Gallery& g, uint64_t seed) {
  std::vector<partner::SubjectImages> people;
  for (int s = 0; s < kSubjects; ++s) people.push_back({g.first_key + s, kImages});
  const partner::ComparisonPlan plan =
      partner::PlanVerificationComparisons(people, kDemoBounds, seed);
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  std::vector<AttributedScore> genuine, impostor;
  for (const auto& c : plan.mated) {
    genuine.push_back(
        {c.subject_x, c.subject_y, g.At(c.subject_x, c.image_x, c.subject_y, c.image_y)});
  }
  for (const auto& c : plan.non_mated) {
    impostor.push_back(
        {c.subject_x, c.subject_y, g.At(c.subject_x, c.image_x, c.subject_y, c.image_y)});
  }
  std::vector<double> mated, non_mated;
  AllComparisons(g, &mated, &non_mated);
  for (double d : mated) a.genuine.Add(d);
  for (double d : non_mated) a.impostor.Add(d);
  a.bounded = *partner::ContributionBoundedHistograms::Build(kDemoBounds, genuine, impostor);
  a.cohort.subjects = kSubjects;
  a.cohort.mated_subjects = kSubjects;
  a.cohort.non_mated_subjects = kSubjects;
  a.cohort.images = kSubjects * kImages;
  a.cohort.mated_comparisons = static_cast<int64_t>(plan.mated.size());
  a.cohort.non_mated_comparisons = static_cast<int64_t>(plan.non_mated.size());
  for (int s = 0; s < kSubjects; ++s) a.failure_rates.Add(kImages, 0);
  return a;
}

std::optional<double> Truth(const metrics::ComparisonScores& all, const MetricCell& c) {
  if (c.name == "roc_auc") return metrics::RocAuc(all);
  if (c.name == "eer") {
    if (auto e = metrics::Eer(all)) return e->eer;
    return std::nullopt;
  }
  if (c.name == "fnmr_at_fmr" && c.target) {
    const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(all, *c.target);
    if (f.point) return f.point->fnmr;
  }
  return std::nullopt;
}

TEST(DemoRoundsTest, PooledFiguresLieWithinTheirIntervalsOfTheLocalTruthIn19Of20Rounds) {
  std::mt19937_64 rng(20261128);
  std::vector<Gallery> galleries;
  std::vector<double> mated, non_mated;
  for (int p = 0; p < kPartners; ++p) {
    galleries.push_back(MakeGallery(1000 * (p + 1), rng));
    AllComparisons(galleries.back(), &mated, &non_mated);
  }
  const auto all = metrics::ComparisonScores::FromDistances(mated, non_mated);
  ASSERT_TRUE(all.ok());
  std::printf("local truth over %zu mated and %zu non-mated comparisons: ROC AUC %.4f, EER %.4f\n",
              mated.size(), non_mated.size(), *metrics::RocAuc(*all), metrics::Eer(*all)->eer);

  partner::EgressGuardConfig config;
  config.k_minimum = kDemoK;
  config.dp.enabled = true;
  config.dp.epsilon_per_release = kDemoEpsilon;
  config.dp.contribution_bound = kDemoBound;
  config.dp.genuine_contribution_bound = kDemoBounds.genuine;
  config.dp.impostor_contribution_bound = kDemoBounds.impostor;
  config.dp.impostor_epsilon_share = kDemoShare;
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(partner::kLedgerGenesisHash));
  const std::unique_ptr<partner::NoiseSource> noise = partner::MakeSecureNoiseSource();

  int within = 0, figures = 0;
  for (int round = 0; round < 20; ++round) {
    RoundRecord record;
    record.request = testing::TestRequest("demo-round-" + std::to_string(round));
    record.request.seed = 7 + static_cast<uint64_t>(round);
    record.quorum = 2;
    record.started_at = "2026-11-28T10:00:00Z";
    record.finished_at = "2026-11-28T10:01:00Z";
    for (int p = 0; p < kPartners; ++p) {
      auto composed =
          partner::ComposeRelease(config, ToWireRequest(record.request),
                                  AggregateOf(galleries[p], record.request.seed), *noise, head);
      ASSERT_TRUE(composed.ok()) << composed.status();
      fedface::v1::EvaluationRelease release;
      ASSERT_TRUE(release.ParseFromString(composed->bytes));
      ASSERT_EQ(release.bin_edges_version(), 2u);
      ASSERT_TRUE(CheckRelease(release, record.request).ok());
      PartnerOutcome o;
      o.partner.name = "partner-" + std::to_string(p);
      // A partner whose noisy impostor histogram came out empty is withheld, as in a real round.
      o.status = ClassifyRelease(release, &o.reason);
      o.release = release;
      record.outcomes.push_back(std::move(o));
    }
    const RoundReport report = BuildRoundReport(record);
    ASSERT_TRUE(report.pooled.available);
    bool all_within = true;
    std::string line;
    for (const MetricCell& c : report.pooled.metrics) {
      const std::optional<double> truth = Truth(*all, c);
      if (!c.released && c.too_noisy) line += "  " + c.label + " too noisy";
      if (!c.released || !truth) continue;
      // Every released pooled figure states an interval (or is too noisy to state one).
      ASSERT_TRUE(c.interval.has_value() || c.too_noisy) << c.label;
      if (!c.interval) continue;
      const bool ok = c.interval->Contains(*truth);
      if (c.name == "eer" && !c.too_noisy) ++figures;
      all_within = all_within && ok;
      char text[160];
      std::snprintf(text, sizeof text, "  %s %.4f [%.4f, %.4f]%s%s", c.label.c_str(), *c.value,
                    c.interval->low, c.interval->high, c.too_noisy ? " too noisy" : "",
                    ok ? "" : " MISSES");
      line += text;
    }
    within += all_within;
    std::printf("round %2d:%s\n", round, line.c_str());
  }
  std::printf("%d of 20 rounds within their intervals of the local truth\n", within);
  std::printf("%d of 20 rounds show the EER as a figure with its interval\n", figures);
  EXPECT_GE(within, 19);
  EXPECT_GE(figures, 15);
}

}  // namespace
}  // namespace fedface::vendor
