#include "tests/unit/coordinator/release_fixture.h"

#include <algorithm>

#include "core/metrics/identification_metrics.h"
#include "core/metrics/metric_intervals.h"
#include "core/metrics/release_derivation.h"

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

fedface::v1::EvaluationRelease MakeLayoutTwoRelease(const RoundRequest& request,
                                                    const std::vector<double>& genuine,
                                                    const std::vector<double>& impostor,
                                                    const LayoutTwoNoise& noise,
                                                    std::mt19937_64& rng) {
  // Exact histograms only for the shared parts (counts bands, throughput, FTE); then layout 2.
  fedface::v1::EvaluationRelease r =
      MakeRelease(request, *metrics::ScoreHistogram::FromDistances(genuine),
                  *metrics::ScoreHistogram::FromDistances(impostor));
  r.set_bin_edges_version(metrics::kBinLayoutV2);
  const double epsilon_i = noise.epsilon * noise.impostor_share;
  const double epsilon_g = noise.epsilon - epsilon_i;
  const double genuine_scale = noise.genuine_bound / epsilon_g;
  const double impostor_scale = 3.0 * (noise.impostor_bound / 2) / epsilon_i;
  auto noisy = [&](const std::vector<double>& distances, double scale) {
    std::vector<double> counts(metrics::kLayoutV2Bins, 0.0);
    for (double d : distances) counts[static_cast<std::size_t>(metrics::LayoutV2BinIndex(d))] += 1;
    for (double& c : counts) c += static_cast<double>(metrics::DrawDiscreteLaplace(scale, rng));
    return counts;
  };
  const std::vector<double> g = noisy(genuine, genuine_scale);
  const std::vector<double> i = noisy(impostor, impostor_scale);
  r.mutable_genuine_histogram()->clear_counts();
  for (double c : g) r.mutable_genuine_histogram()->add_counts(c);
  r.mutable_impostor_histogram()->clear_counts();
  for (double c : i) r.mutable_impostor_histogram()->add_counts(c);
  fedface::v1::PrivacyAccounting* p = r.mutable_privacy();
  p->set_differential_privacy(true);
  p->set_epsilon(noise.epsilon);
  p->set_contribution_bound(
      static_cast<uint32_t>(std::max(noise.genuine_bound, noise.impostor_bound)));
  p->set_genuine_contribution_bound(static_cast<uint32_t>(noise.genuine_bound));
  p->set_impostor_contribution_bound(static_cast<uint32_t>(noise.impostor_bound));
  p->set_genuine_noise_scale(genuine_scale);
  p->set_impostor_noise_scale(impostor_scale);
  const metrics::DerivedMetrics d = *metrics::DeriveVerificationMetrics(
      metrics::kBinLayoutV2, g, i, metrics::PublicNoise{{{genuine_scale}}, {{impostor_scale}}});
  auto why = [](metrics::Withheld w) {
    switch (w) {
      case metrics::Withheld::kNone:
        return SUPPRESSION_NONE;
      case metrics::Withheld::kNoMated:
        return fedface::v1::SUPPRESSION_NO_MATED;
      case metrics::Withheld::kInsufficientNonMated:
        return fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED;
      case metrics::Withheld::kTooNoisy:
        break;
    }
    return fedface::v1::SUPPRESSION_TOO_NOISY;
  };
  fedface::v1::FnmrAtFmr* fnmr[] = {r.mutable_fnmr_at_fmr_1e2(), r.mutable_fnmr_at_fmr_1e3(),
                                    r.mutable_fnmr_at_fmr_1e4()};
  for (std::size_t k = 0; k < 3; ++k) {
    const metrics::DerivedRate& rate = d.fnmr_at_fmr[k];
    const double target = fnmr[k]->fmr_target();
    fnmr[k]->Clear();
    fnmr[k]->set_fmr_target(target);
    fnmr[k]->set_suppression(why(rate.withheld));
    if (!rate.value) continue;
    fnmr[k]->set_fnmr(*rate.value);
    fnmr[k]->set_threshold(*rate.threshold);
    fnmr[k]->set_fmr(*rate.achieved);
  }
  r.mutable_eer()->Clear();
  r.mutable_eer()->set_suppression(why(d.eer.withheld));
  if (d.eer.value) {
    r.mutable_eer()->set_eer(*d.eer.value);
    r.mutable_eer()->set_threshold(*d.eer.threshold);
  }
  r.mutable_roc_auc()->Clear();
  r.mutable_roc_auc()->set_suppression(why(d.roc_auc.withheld));
  if (d.roc_auc.value) r.mutable_roc_auc()->set_value(*d.roc_auc.value);
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
