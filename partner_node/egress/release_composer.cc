#include "partner_node/egress/release_composer.h"

#include <cmath>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "core/common/proto_bytes.h"
#include "core/common/status_macros.h"
#include "core/metrics/identification_metrics.h"
#include "core/metrics/verification_metrics.h"
#include "partner_node/egress/release_shape.h"
#include "partner_node/egress/vendor_request.h"

namespace fedface::partner {
namespace {

using fedface::v1::EvaluationRelease;
using fedface::v1::RunEvaluationRequest;
using fedface::v1::Suppression;

Suppression ReasonOf(metrics::Availability a) {
  switch (a) {
    case metrics::Availability::kAvailable:
      return fedface::v1::SUPPRESSION_NONE;
    case metrics::Availability::kInsufficientNonMated:
      return fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED;
    case metrics::Availability::kNoMated:
      return fedface::v1::SUPPRESSION_NO_MATED;
  }
  return fedface::v1::SUPPRESSION_NOT_MEASURED;
}

// Rates leave on a grid of kRateStep (release_shape.h refuses anything off it).
double OnRateGrid(double x) { return std::round(x / kRateStep) * kRateStep; }

double RoundSignificant(double x, int digits) {
  if (!(x > 0) || !std::isfinite(x)) return 0;
  const double scale = std::pow(10.0, digits - 1 - std::floor(std::log10(x)));
  return std::round(x * scale) / scale;
}

void SetBand(fedface::v1::CountBand* band, int64_t count, bool allowed) {
  if (!allowed) {
    band->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  const Band b = CountBandOf(count);
  band->set_suppression(fedface::v1::SUPPRESSION_NONE);
  band->set_at_least(b.at_least);
  band->set_below(b.below);
}

void SetHistogram(fedface::v1::ScoreHistogram* out, const metrics::ScoreHistogram& h,
                  bool allowed) {
  if (!allowed) {
    out->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  out->set_suppression(fedface::v1::SUPPRESSION_NONE);
  for (double c : h.counts()) out->add_counts(c);
}

// One error rate at a target false-accept rate, from histograms: FNMR at FMR for verification,
// and the same arithmetic as FNIR at FPIR over the identification histograms
// (identification_metrics.h). `write(threshold, miss_rate, false_accept_rate)` fills the fields.
template <typename RateAtTarget, typename Write>
void SetRateAtTarget(RateAtTarget* out, const metrics::ScoreHistogram& g,
                     const metrics::ScoreHistogram& i, double target, bool allowed, Write write) {
  if (!allowed) {
    out->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(g, i, target);
  out->set_suppression(ReasonOf(f.availability));
  if (f.point) write(f.point->threshold, OnRateGrid(f.point->fnmr), OnRateGrid(f.point->fmr));
}

void SetFnmrAtFmr(fedface::v1::FnmrAtFmr* out, double target, const metrics::ScoreHistogram& g,
                  const metrics::ScoreHistogram& i, bool allowed) {
  out->set_fmr_target(target);
  SetRateAtTarget(out, g, i, target, allowed, [out](double threshold, double fnmr, double fmr) {
    out->set_threshold(threshold);
    out->set_fnmr(fnmr);
    out->set_fmr(fmr);
  });
}

void SetFnirAtFpir(fedface::v1::FnirAtFpir* out, double target, const metrics::ScoreHistogram& g,
                   const metrics::ScoreHistogram& i, bool allowed) {
  out->set_fpir_target(target);
  SetRateAtTarget(out, g, i, target, allowed, [out](double threshold, double fnir, double fpir) {
    out->set_threshold(threshold);
    out->set_fnir(fnir);
    out->set_fpir(fpir);
  });
}

// Step 3: the release's epsilon is split only when the failure-to-enrol rate can be released
// (its noise small enough at this public subject count); otherwise all of it goes to the
// histograms. Both shares are whole micro-epsilons, so the charge is exactly epsilon.
// Verification goes out over bin layout 2, identification over layout 1.
PrivateValues PrivateNoise(const DifferentialPrivacyConfig& dp, const EvaluationAggregate& a,
                           const KMinimumDecision& k_minimum, NoiseSource& noise) {
  PrivateValues out;
  out.epsilon = dp.epsilon_per_release;
  const double fte_epsilon = FailureRateEpsilon(dp);
  const bool fte =
      k_minimum.cohort && a.failure_rates.subjects() > 0 && fte_epsilon > 0 &&
      FailureRateNoiseSd(a.failure_rates.subjects(), fte_epsilon) <= kFailureRateMaxNoiseSd;
  const double histogram_epsilon =
      fte ? dp.epsilon_per_release - fte_epsilon : dp.epsilon_per_release;
  if (a.protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION) {
    out.layout_v2 =
        AddLayoutV2Noise(*a.bounded, histogram_epsilon, dp.impostor_epsilon_share, noise);
  } else {
    out.histograms = AddDiscreteLaplaceNoise(*a.bounded, histogram_epsilon, noise);
  }
  if (fte) out.failure_to_enrol_rate = NoisyMeanFailureRate(a.failure_rates, fte_epsilon, noise);
  return out;
}

Suppression ReasonOf(metrics::Withheld w) {
  switch (w) {
    case metrics::Withheld::kNone:
      return fedface::v1::SUPPRESSION_NONE;
    case metrics::Withheld::kNoMated:
      return fedface::v1::SUPPRESSION_NO_MATED;
    case metrics::Withheld::kInsufficientNonMated:
      return fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED;
    case metrics::Withheld::kTooNoisy:
      return fedface::v1::SUPPRESSION_TOO_NOISY;
  }
  return fedface::v1::SUPPRESSION_NOT_MEASURED;
}

// The raw noisy layout-2 counts, as they are (a count may be negative).
void SetRawCounts(fedface::v1::ScoreHistogram* out, const std::vector<double>& counts,
                  bool allowed) {
  if (!allowed) {
    out->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    return;
  }
  out->set_suppression(fedface::v1::SUPPRESSION_NONE);
  for (double c : counts) out->add_counts(c);
}

// Verification metrics of a layout-2 release: metrics::DeriveVerificationMetrics over the
// partner's own noisy counts (post-processing; the vendor derives the pooled ones the same way).
void SetLayoutV2Verification(fedface::v1::EvaluationRelease& r, const metrics::DerivedMetrics& d,
                             bool both) {
  fedface::v1::FnmrAtFmr* fnmr[] = {r.mutable_fnmr_at_fmr_1e2(), r.mutable_fnmr_at_fmr_1e3(),
                                    r.mutable_fnmr_at_fmr_1e4()};
  for (std::size_t k = 0; k < metrics::kDerivedFmrTargets.size(); ++k) {
    fedface::v1::FnmrAtFmr* out = fnmr[k];
    out->set_fmr_target(metrics::kDerivedFmrTargets[k]);
    const metrics::DerivedRate& rate = d.fnmr_at_fmr[k];
    out->set_suppression(both ? ReasonOf(rate.withheld) : fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    if (!both || !rate.value) continue;
    out->set_threshold(OnRateGrid(*rate.threshold));
    out->set_fnmr(OnRateGrid(*rate.value));
    out->set_fmr(OnRateGrid(*rate.achieved));
  }
  fedface::v1::EqualErrorRate* eer = r.mutable_eer();
  fedface::v1::Rate* auc = r.mutable_roc_auc();
  eer->set_suppression(both ? ReasonOf(d.eer.withheld) : fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  auc->set_suppression(both ? ReasonOf(d.roc_auc.withheld)
                            : fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  if (both && d.eer.value) {
    eer->set_eer(OnRateGrid(*d.eer.value));
    eer->set_threshold(OnRateGrid(*d.eer.threshold));
  }
  if (both && d.roc_auc.value) auc->set_value(OnRateGrid(*d.roc_auc.value));
}

Suppression MissingSideReason(const metrics::ScoreHistogram& g) {
  return g.total() > 0 ? fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED
                       : fedface::v1::SUPPRESSION_NO_MATED;
}
}  // namespace

KMinimumDecision ApplyKMinimum(const CohortCounts& cohort, int k) {
  KMinimumDecision d;
  d.cohort = cohort.subjects >= k;
  d.mated = d.cohort && cohort.mated_subjects >= k;
  d.non_mated = d.cohort && cohort.non_mated_subjects >= k;
  return d;
}

Band CountBandOf(int64_t count) {
  if (count < 10) return Band{0, 10};
  // Ladder 10, 20, 50, 100, 200, 500, ...; the last band is open-ended (below = 0).
  uint64_t lower = 10;
  static constexpr uint64_t kSteps[] = {2, 5, 10};  // multipliers of the decade start
  uint64_t decade = 10;
  const auto n = static_cast<uint64_t>(count);
  while (true) {
    for (uint64_t step : kSteps) {
      const uint64_t upper = decade * step;
      if (n < upper) return Band{lower, upper};
      lower = upper;
    }
    if (decade > UINT64_MAX / 100) return Band{lower, 0};
    decade *= 10;
  }
}

VerificationBounds VerificationBoundsOf(const DifferentialPrivacyConfig& dp) {
  return VerificationBounds{dp.genuine_contribution_bound, dp.impostor_contribution_bound};
}

double FailureRateEpsilon(const DifferentialPrivacyConfig& dp) {
  return std::round(dp.epsilon_per_release * kFailureRateEpsilonShare * 1e6) / 1e6;
}

fedface::v1::PrivacyAccounting LayoutV2Accounting(const DifferentialPrivacyConfig& dp,
                                                  bool failure_rate_released) {
  const VerificationBounds bounds = VerificationBoundsOf(dp);
  const double histogram_epsilon = failure_rate_released
                                       ? dp.epsilon_per_release - FailureRateEpsilon(dp)
                                       : dp.epsilon_per_release;
  const LayoutV2Noise noise =
      LayoutV2NoiseFor(bounds, histogram_epsilon, dp.impostor_epsilon_share);
  fedface::v1::PrivacyAccounting p;
  p.set_differential_privacy(true);
  p.set_epsilon(dp.epsilon_per_release);
  p.set_contribution_bound(static_cast<uint32_t>(std::max(bounds.genuine, bounds.impostor)));
  p.set_genuine_contribution_bound(static_cast<uint32_t>(bounds.genuine));
  p.set_impostor_contribution_bound(static_cast<uint32_t>(bounds.impostor));
  p.set_genuine_noise_scale(noise.genuine_scale.value());
  p.set_impostor_noise_scale(noise.impostor_scale.value());
  return p;
}

EvaluationRelease BuildRelease(const RunEvaluationRequest& request,
                               const EvaluationAggregate& aggregate,
                               const KMinimumDecision& k_minimum,
                               const PrivateValues* private_values, const EgressGuardConfig& config,
                               const fedface::v1::LedgerHead& ledger_head) {
  EvaluationRelease r;
  *r.mutable_ledger_head() = ledger_head;
  r.set_round_id(request.round_id());
  r.set_model_version(request.model_version());
  r.set_protocol(request.protocol());
  const PrivateHistograms* v2 =
      private_values && private_values->layout_v2 ? &*private_values->layout_v2 : nullptr;
  r.set_bin_edges_version(
      static_cast<uint32_t>(v2 ? metrics::kBinLayoutV2 : metrics::kScoreBinEdgesVersion));

  const metrics::ScoreHistogram& g =
      private_values ? private_values->histograms.genuine : aggregate.genuine;
  const metrics::ScoreHistogram& i =
      private_values ? private_values->histograms.impostor : aggregate.impostor;
  // Layout 2: the partner's own figures come from its raw noisy counts through the one
  // derivation the vendor uses too (lengths are the layout's by construction: it cannot fail).
  std::optional<metrics::DerivedMetrics> derived;
  if (v2) {
    const metrics::PublicNoise noise{{{v2->noise.genuine_scale.value()}},
                                     {{v2->noise.impostor_scale.value()}}};
    derived = *metrics::DeriveVerificationMetrics(metrics::kBinLayoutV2, v2->genuine, v2->impostor,
                                                  noise);
  }
  const double genuine_total = derived ? derived->genuine_total : g.total();
  const double impostor_total = derived ? derived->impostor_total : i.total();

  // Counts. The number of subjects is public to the mechanism (differential_privacy.h); under
  // differential privacy the comparison counts are those of the noisy histograms
  // (post-processing), and the image count, which one subject can move arbitrarily, stays home.
  const CohortCounts& c = aggregate.cohort;
  fedface::v1::Counts* counts = r.mutable_counts();
  SetBand(counts->mutable_subjects(), c.subjects, k_minimum.cohort);
  if (private_values) {
    if (k_minimum.cohort) {
      counts->mutable_images()->set_suppression(fedface::v1::SUPPRESSION_NOT_PRIVATE);
    } else {
      SetBand(counts->mutable_images(), 0, false);
    }
    SetBand(counts->mutable_mated_comparisons(), std::llround(genuine_total), k_minimum.mated);
    SetBand(counts->mutable_non_mated_comparisons(), std::llround(impostor_total),
            k_minimum.non_mated);
  } else {
    SetBand(counts->mutable_images(), c.images, k_minimum.cohort);
    SetBand(counts->mutable_mated_comparisons(), c.mated_comparisons, k_minimum.mated);
    SetBand(counts->mutable_non_mated_comparisons(), c.non_mated_comparisons, k_minimum.non_mated);
  }

  fedface::v1::Rate* fte = r.mutable_failure_to_enrol_rate();
  if (!k_minimum.cohort) {
    fte->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  } else if (private_values) {
    if (aggregate.failure_rates.subjects() <= 0) {
      fte->set_suppression(fedface::v1::SUPPRESSION_NOT_MEASURED);
    } else if (!private_values->failure_to_enrol_rate) {
      fte->set_suppression(fedface::v1::SUPPRESSION_TOO_NOISY);
    } else {
      fte->set_suppression(fedface::v1::SUPPRESSION_NONE);
      fte->set_value(*private_values->failure_to_enrol_rate);
    }
  } else if (c.images <= 0) {
    fte->set_suppression(fedface::v1::SUPPRESSION_NOT_MEASURED);
  } else {
    fte->set_suppression(fedface::v1::SUPPRESSION_NONE);
    const double rate = static_cast<double>(c.failures_to_enrol) / static_cast<double>(c.images);
    fte->set_value(std::round(rate / kFailureRateStep) * kFailureRateStep);
  }

  const bool both = k_minimum.mated && k_minimum.non_mated;
  const bool verification = request.protocol() == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;

  auto not_in_protocol = [](auto* m) {
    m->set_suppression(fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);
  };
  if (verification && derived) {
    SetLayoutV2Verification(r, *derived, both);
  } else if (verification) {
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e2(), 1e-2, g, i, both);
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e3(), 1e-3, g, i, both);
    SetFnmrAtFmr(r.mutable_fnmr_at_fmr_1e4(), 1e-4, g, i, both);
    fedface::v1::EqualErrorRate* eer = r.mutable_eer();
    fedface::v1::Rate* auc = r.mutable_roc_auc();
    if (!both) {
      eer->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
      auc->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    } else {
      const auto e = metrics::Eer(g, i);
      const auto a = metrics::RocAuc(g, i);
      eer->set_suppression(e ? fedface::v1::SUPPRESSION_NONE : MissingSideReason(g));
      if (e) {
        eer->set_eer(OnRateGrid(e->eer));
        eer->set_threshold(OnRateGrid(e->threshold));
      }
      auc->set_suppression(a ? fedface::v1::SUPPRESSION_NONE : MissingSideReason(g));
      if (a) auc->set_value(OnRateGrid(*a));
    }
  }
  if (verification) {
    not_in_protocol(r.mutable_rank1_identification_rate());
    not_in_protocol(r.mutable_fnir_at_fpir_1e2());
    r.mutable_fnir_at_fpir_1e2()->set_fpir_target(1e-2);
    not_in_protocol(r.mutable_fnir_at_fpir_1e1());
    r.mutable_fnir_at_fpir_1e1()->set_fpir_target(1e-1);
  } else {
    for (auto [m, t] : {std::pair{r.mutable_fnmr_at_fmr_1e2(), 1e-2},
                        std::pair{r.mutable_fnmr_at_fmr_1e3(), 1e-3},
                        std::pair{r.mutable_fnmr_at_fmr_1e4(), 1e-4}}) {
      not_in_protocol(m);
      m->set_fmr_target(t);
    }
    not_in_protocol(r.mutable_eer());
    not_in_protocol(r.mutable_roc_auc());
    fedface::v1::Rate* rank1 = r.mutable_rank1_identification_rate();
    if (!k_minimum.mated) {
      rank1->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
    } else if (const auto rate = metrics::Rank1RateFromHistogram(g)) {
      rank1->set_suppression(fedface::v1::SUPPRESSION_NONE);
      rank1->set_value(OnRateGrid(*rate));
    } else {
      rank1->set_suppression(fedface::v1::SUPPRESSION_NO_MATED);
    }
    SetFnirAtFpir(r.mutable_fnir_at_fpir_1e2(), 1e-2, g, i, both);
    SetFnirAtFpir(r.mutable_fnir_at_fpir_1e1(), 1e-1, g, i, both);
  }

  if (v2) {
    SetRawCounts(r.mutable_genuine_histogram(), v2->genuine, k_minimum.mated);
    SetRawCounts(r.mutable_impostor_histogram(), v2->impostor, k_minimum.non_mated);
  } else {
    SetHistogram(r.mutable_genuine_histogram(), g, k_minimum.mated);
    SetHistogram(r.mutable_impostor_histogram(), i, k_minimum.non_mated);
  }

  // Measured on the vendor's own self-test chips when the model loads (serving_model.cc), never
  // on the partner's photos: it says how fast the partner's machine is, nothing about its faces.
  fedface::v1::Throughput* throughput = r.mutable_throughput();
  if (!k_minimum.cohort) {
    throughput->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  } else if (!aggregate.embeddings_per_second || !(*aggregate.embeddings_per_second > 0)) {
    throughput->set_suppression(fedface::v1::SUPPRESSION_NOT_MEASURED);
  } else {
    throughput->set_suppression(fedface::v1::SUPPRESSION_NONE);
    throughput->set_embeddings_per_second(
        RoundSignificant(*aggregate.embeddings_per_second, kThroughputSignificantDigits));
  }

  if (v2) {
    // From the partner's configuration alone (never the request); ComposeRelease checks that the
    // noise drawn had these scales.
    *r.mutable_privacy() =
        LayoutV2Accounting(config.dp, fte->suppression() == fedface::v1::SUPPRESSION_NONE);
    return r;
  }
  fedface::v1::PrivacyAccounting* privacy = r.mutable_privacy();
  privacy->set_differential_privacy(private_values != nullptr);
  privacy->set_epsilon(private_values ? private_values->epsilon : 0.0);
  privacy->set_contribution_bound(
      private_values ? static_cast<uint32_t>(config.dp.contribution_bound) : 0u);
  return r;
}

absl::StatusOr<ComposedRelease> ComposeRelease(const EgressGuardConfig& config,
                                               const RunEvaluationRequest& request,
                                               const EvaluationAggregate& aggregate,
                                               NoiseSource& noise,
                                               const fedface::v1::LedgerHead& ledger_head) {
  if (aggregate.protocol != request.protocol()) {
    return absl::FailedPreconditionError(
        "egress guard: the evaluation ran another protocol than the request asks for");
  }
  RETURN_IF_ERROR(CheckProtocolAllowed(request, config.dp));

  // Step 2.
  const KMinimumDecision k_minimum = ApplyKMinimum(aggregate.cohort, config.k_minimum);

  // Step 3.
  std::optional<PrivateValues> private_values;
  if (config.dp.enabled) {
    const bool verification = aggregate.protocol == fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
    const VerificationBounds want = VerificationBoundsOf(config.dp);
    const bool bounded_as_configured =
        aggregate.bounded &&
        (verification ? aggregate.bounded->bounds().genuine == want.genuine &&
                            aggregate.bounded->bounds().impostor == want.impostor
                      : aggregate.bounded->contribution_bound() == config.dp.contribution_bound);
    if (!bounded_as_configured) {
      return absl::FailedPreconditionError(
          "egress guard: differential privacy is on but the evaluation did not bound each "
          "subject's contributions with the configured bound");
    }
    private_values = PrivateNoise(config.dp, aggregate, k_minimum, noise);
  }

  // Step 4.
  const EvaluationRelease release =
      BuildRelease(request, aggregate, k_minimum, private_values ? &*private_values : nullptr,
                   config, ledger_head);

  // Step 5.
  if (private_values && private_values->layout_v2) {
    const LayoutV2Noise& drawn = private_values->layout_v2->noise;
    if (drawn.genuine_scale.value() != release.privacy().genuine_noise_scale() ||
        drawn.impostor_scale.value() != release.privacy().impostor_noise_scale()) {
      return absl::InternalError(
          "egress guard: the layout-2 noise drawn differs from the scales the release states");
    }
  }
  if (absl::Status s = CheckAllowlisted(release, config.allowlist, &config.dp); !s.ok()) {
    return absl::InternalError(s.message());
  }
  return ComposedRelease{SerializeDeterministically(release),
                         private_values ? private_values->epsilon : 0.0};
}

absl::StatusOr<std::string> PreviewRelease(const EgressGuardConfig& config,
                                           const RunEvaluationRequest& request,
                                           const EvaluationAggregate& aggregate,
                                           const fedface::v1::LedgerHead& ledger_head) {
  std::unique_ptr<NoiseSource> noise = MakeSecureNoiseSource();
  ASSIGN_OR_RETURN(ComposedRelease composed,
                   ComposeRelease(config, request, aggregate, *noise, ledger_head));
  return std::move(composed.bytes);
}

}  // namespace fedface::partner
