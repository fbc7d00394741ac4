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
