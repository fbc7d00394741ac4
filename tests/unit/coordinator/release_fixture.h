// Releases shaped like the ones a partner's egress guard sends with DP off, built from known
// histograms with the same metric library, for tests of the vendor side. (The partner's own
// guard is tested in tests/unit/egress_guard; the integration tests use real partners.)
#pragma once

#include <random>
#include <vector>

#include "core/metrics/score_histogram.h"
#include "fedface/v1/evaluation.pb.h"
#include "model_vendor/coordinator/round_record.h"

namespace fedface::vendor::testing {

// A verification or identification release (request's protocol) carrying `genuine` and
// `impostor`, with every metric computed from them; nothing withheld except what the metric
// library itself cannot support (too few non-mated comparisons).
fedface::v1::EvaluationRelease MakeRelease(const RoundRequest& request,
                                           const metrics::ScoreHistogram& genuine,
                                           const metrics::ScoreHistogram& impostor);

// The public noise of a layout-2 release (what the partner's configuration fixes).
struct LayoutTwoNoise {
  double epsilon = 1.0;
  int genuine_bound = 10;   // c_g
  int impostor_bound = 64;  // c_i
  double impostor_share = 0.8;
};

// A verification release over bin layout 2 as a partner's guard sends it under differential
// privacy: the exact layout-2 counts of `genuine` and `impostor` distances plus discrete Laplace
// noise (drawn from `rng`) of the scales `noise` implies, not clamped; fields 4-7 set; every
// metric from metrics::DeriveVerificationMetrics over the noisy counts.
fedface::v1::EvaluationRelease MakeLayoutTwoRelease(const RoundRequest& request,
                                                    const std::vector<double>& genuine,
                                                    const std::vector<double>& impostor,
                                                    const LayoutTwoNoise& noise,
                                                    std::mt19937_64& rng);

// A release from a partner whose gallery is below its k-minimum: everything withheld with
// SUPPRESSION_COHORT_BELOW_K.
fedface::v1::EvaluationRelease MakeKMinimumRelease(const RoundRequest& request);

// n draws of N(mean, sd), clamped at 0 (distances).
std::vector<double> NormalDistances(std::mt19937_64& rng, int n, double mean, double sd);

// A verification request for round `id`.
RoundRequest TestRequest(
    const std::string& id = "round-1",
    fedface::v1::EvaluationProtocol protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);

}  // namespace fedface::vendor::testing
