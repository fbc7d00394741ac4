// The egress guard's pure step and its noise, timed: what one release costs the partner.
//   build/bench/egress_bench [--benchmark_filter=...]
// Figures to compare within one run (the machine is shared): a release's noise is ~400 discrete
// Laplace draws, each a handful of CSPRNG words.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "partner_node/egress/differential_privacy.h"
#include "partner_node/egress/release_composer.h"

namespace fedface::partner {
namespace {

void BM_SecureBits64(benchmark::State& state) {
  std::unique_ptr<NoiseSource> noise = MakeSecureNoiseSource();
  for (auto _ : state) benchmark::DoNotOptimize(noise->Bits64());
}
BENCHMARK(BM_SecureBits64);

// One draw at the scale of a default release (c = 10, epsilon = 1: 4c/epsilon = 40).
void BM_DiscreteLaplaceDraw(benchmark::State& state) {
  std::unique_ptr<NoiseSource> noise = MakeSecureNoiseSource();
  const NoiseScale scale = HistogramNoiseScale({10, 10}, 1.0);
  for (auto _ : state) benchmark::DoNotOptimize(SampleDiscreteLaplace(scale, *noise));
}
BENCHMARK(BM_DiscreteLaplaceDraw);

// The whole pure step for a verification round of `subjects` subjects (5 images each, c = 10,
// epsilon 1): noise on both histograms, the failure rate, every metric, the shape and grid check,
// the serialization.
void BM_ComposeRelease(benchmark::State& state) {
  const int subjects = static_cast<int>(state.range(0));
  std::vector<SubjectImages> people;
  for (int k = 0; k < subjects; ++k) people.push_back({k + 1, 5});
  const ComparisonPlan plan = PlanVerificationComparisons(people, 10, 7);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> genuine(0.4, 0.08), impostor(0.85, 0.08);
  std::vector<AttributedScore> g, i;
  for (const auto& p : plan.mated) g.push_back({p.subject_x, p.subject_y, genuine(rng)});
  for (const auto& p : plan.non_mated) i.push_back({p.subject_x, p.subject_y, impostor(rng)});
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  a.bounded = *ContributionBoundedHistograms::Build(10, g, i);
  a.cohort = {.subjects = subjects,
              .mated_subjects = subjects,
              .non_mated_subjects = subjects,
              .images = 5 * subjects};
  for (int k = 0; k < subjects; ++k) a.failure_rates.Add(5, k % 50 == 0 ? 1 : 0);
  a.embeddings_per_second = 120;
  EgressGuardConfig config;
  fedface::v1::RunEvaluationRequest request;
  request.set_round_id("bench");
  request.set_model_version("1.0.0");
  request.set_protocol(a.protocol);
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(64, '0'));
  std::unique_ptr<NoiseSource> noise = MakeSecureNoiseSource();
  for (auto _ : state) {
    absl::StatusOr<ComposedRelease> r = ComposeRelease(config, request, a, *noise, head);
    if (!r.ok()) state.SkipWithError(std::string(r.status().message()).c_str());
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ComposeRelease)->Arg(100)->Arg(10000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace fedface::partner

BENCHMARK_MAIN();
