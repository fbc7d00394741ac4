#include "tests/unit/coordinator/release_fixture.h"

#include <algorithm>

#include "core/metrics/identification_metrics.h"

namespace fedface::vendor::testing {
namespace {

using fedface::v1::SUPPRESSION_COHORT_BELOW_K;
using fedface::v1::SUPPRESSION_NONE;
using fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL;

void SetBand(fedface::v1::CountBand* b, double count) {
  b->set_suppression(SUPPRESSION_NONE);
  b->set_at_least(static_cast<uint64_t>(count) / 10 * 10);
  b->set_below(static_cast<uint64_t>(count) / 10 * 10 + 10);
}

fedface::v1::Suppression Why(metrics::Availability a) {
  switch (a) {
    case metrics::Availability::kAvailable:
      return SUPPRESSION_NONE;
    case metrics::Availability::kInsufficientNonMated:
      return fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED;
    default:
      return fedface::v1::SUPPRESSION_NO_MATED;
  }
}

void SetFnmr(fedface::v1::FnmrAtFmr* m, double target, const metrics::ScoreHistogram& g,
             const metrics::ScoreHistogram& i) {
  const metrics::FnmrAtFmr r = metrics::ComputeFnmrAtFmr(g, i, target);
  m->set_fmr_target(target);
  m->set_suppression(Why(r.availability));
  if (r.point) {
    m->set_threshold(r.point->threshold);
    m->set_fnmr(r.point->fnmr);
    m->set_fmr(r.point->fmr);
  }
}

void SetFnir(fedface::v1::FnirAtFpir* m, double target, const metrics::ScoreHistogram& g,
             const metrics::ScoreHistogram& i) {
  const metrics::FnmrAtFmr r = metrics::ComputeFnmrAtFmr(g, i, target);
  m->set_fpir_target(target);
  m->set_suppression(Why(r.availability));
  if (r.point) {
    m->set_threshold(r.point->threshold);
    m->set_fnir(r.point->fnmr);
    m->set_fpir(r.point->fmr);
  }
}

void Echo(const RoundRequest& request, fedface::v1::EvaluationRelease* r) {
  r->set_round_id(request.round_id);
  r->set_model_version(request.model_version);
  r->set_protocol(request.protocol);
  r->set_bin_edges_version(metrics::kScoreBinEdgesVersion);
}

}  // namespace

fedface::v1::EvaluationRelease MakeRelease(const RoundRequest& request,
                                           const metrics::ScoreHistogram& genuine,
                                           const metrics::ScoreHistogram& impostor) {
  fedface::v1::EvaluationRelease r;
  Echo(request, &r);
  SetBand(r.mutable_counts()->mutable_subjects(), 100);
  SetBand(r.mutable_counts()->mutable_images(), 500);
  SetBand(r.mutable_counts()->mutable_mated_comparisons(), genuine.total());
  SetBand(r.mutable_counts()->mutable_non_mated_comparisons(), impostor.total());
  r.mutable_failure_to_enrol_rate()->set_suppression(SUPPRESSION_NONE);
  r.mutable_failure_to_enrol_rate()->set_value(0.01);
  if (request.protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION) {
    SetFnmr(r.mutable_fnmr_at_fmr_1e2(), 1e-2, genuine, impostor);
    SetFnmr(r.mutable_fnmr_at_fmr_1e3(), 1e-3, genuine, impostor);
    SetFnmr(r.mutable_fnmr_at_fmr_1e4(), 1e-4, genuine, impostor);
    const auto eer = metrics::Eer(genuine, impostor);
    r.mutable_eer()->set_suppression(SUPPRESSION_NONE);
    r.mutable_eer()->set_eer(eer->eer);
    r.mutable_eer()->set_threshold(eer->threshold);
    r.mutable_roc_auc()->set_suppression(SUPPRESSION_NONE);
    r.mutable_roc_auc()->set_value(*metrics::RocAuc(genuine, impostor));
    r.mutable_rank1_identification_rate()->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
    r.mutable_fnir_at_fpir_1e2()->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
    r.mutable_fnir_at_fpir_1e1()->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
  } else {
    for (auto* m :
         {r.mutable_fnmr_at_fmr_1e2(), r.mutable_fnmr_at_fmr_1e3(), r.mutable_fnmr_at_fmr_1e4()}) {
      m->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
    }
    r.mutable_eer()->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
    r.mutable_roc_auc()->set_suppression(SUPPRESSION_NOT_IN_PROTOCOL);
    r.mutable_rank1_identification_rate()->set_suppression(SUPPRESSION_NONE);
    r.mutable_rank1_identification_rate()->set_value(*metrics::Rank1RateFromHistogram(genuine));
    SetFnir(r.mutable_fnir_at_fpir_1e2(), 1e-2, genuine, impostor);
    SetFnir(r.mutable_fnir_at_fpir_1e1(), 1e-1, genuine, impostor);
  }
  r.mutable_genuine_histogram()->set_suppression(SUPPRESSION_NONE);
  for (double c : genuine.counts()) r.mutable_genuine_histogram()->add_counts(c);
  r.mutable_impostor_histogram()->set_suppression(SUPPRESSION_NONE);
  for (double c : impostor.counts()) r.mutable_impostor_histogram()->add_counts(c);
  r.mutable_throughput()->set_suppression(SUPPRESSION_NONE);
  r.mutable_throughput()->set_embeddings_per_second(70);
  r.mutable_privacy()->set_differential_privacy(false);
  return r;
}

fedface::v1::EvaluationRelease MakeKMinimumRelease(const RoundRequest& request) {
  fedface::v1::EvaluationRelease r;
  Echo(request, &r);
  for (auto* b : {r.mutable_counts()->mutable_subjects(), r.mutable_counts()->mutable_images(),
                  r.mutable_counts()->mutable_mated_comparisons(),
                  r.mutable_counts()->mutable_non_mated_comparisons()}) {
    b->set_suppression(SUPPRESSION_COHORT_BELOW_K);
  }
  r.mutable_failure_to_enrol_rate()->set_suppression(SUPPRESSION_COHORT_BELOW_K);
  const bool verification = request.protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  const auto in = [&](bool verification_metric) {
    return verification_metric == verification ? SUPPRESSION_COHORT_BELOW_K
                                               : SUPPRESSION_NOT_IN_PROTOCOL;
  };
  r.mutable_fnmr_at_fmr_1e2()->set_suppression(in(true));
  r.mutable_fnmr_at_fmr_1e3()->set_suppression(in(true));
  r.mutable_fnmr_at_fmr_1e4()->set_suppression(in(true));
  r.mutable_eer()->set_suppression(in(true));
  r.mutable_roc_auc()->set_suppression(in(true));
  r.mutable_rank1_identification_rate()->set_suppression(in(false));
  r.mutable_fnir_at_fpir_1e2()->set_suppression(in(false));
  r.mutable_fnir_at_fpir_1e1()->set_suppression(in(false));
  r.mutable_genuine_histogram()->set_suppression(SUPPRESSION_COHORT_BELOW_K);
  r.mutable_impostor_histogram()->set_suppression(SUPPRESSION_COHORT_BELOW_K);
  r.mutable_throughput()->set_suppression(SUPPRESSION_COHORT_BELOW_K);
  r.mutable_privacy()->set_differential_privacy(false);
  return r;
}

std::vector<double> NormalDistances(std::mt19937_64& rng, int n, double mean, double sd) {
  std::normal_distribution<double> dist(mean, sd);
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(std::max(0.0, dist(rng)));
  return out;
}

RoundRequest TestRequest(const std::string& id, fedface::v1::EvaluationProtocol protocol) {
  RoundRequest r;
  r.round_id = id;
  r.model_version = "1.0.0";
  r.protocol = protocol;
  r.seed = 42;
  return r;
}

}  // namespace fedface::vendor::testing
