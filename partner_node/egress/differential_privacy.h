// Differential privacy for evaluation releases: per-subject contribution bounding (seeded
// sampling), the discrete Laplace mechanism on histogram counts, and the noise source.
//
// Privacy unit and neighbouring relation: a SUBJECT. Two evaluation datasets are neighbours when
// one is the other with ONE subject added or removed, with everything about it (its key, its
// images, their embeddings, its failures to enrol): add/remove ("unbounded") DP. Substituting one
// subject (same key with other photos, or another person in its place) is a removal followed by
// an addition, so it costs at most twice the epsilon (group privacy of size 2).
//
// Why the L1 sensitivity per histogram is c_g (genuine) and 3 * floor(c_i / 2) (impostor):
//   - PlanVerificationComparisons picks a subject's own image pairs from its key, its image count
//     and the seed: at most c_g mated comparisons, each involving that subject only. Adding or
//     removing the subject adds or removes exactly those: L1 change <= c_g, and nobody else's
//     mated comparisons move.
//   - Impostor pairs come from a hash ring: subjects ordered by a keyed hash of their key (keyed
//     by the release's seed), each compared with its next m = floor(c_i / 2) subjects on the ring
//     (so a subject is behind at most 2m <= c_i impostor comparisons). Inserting a subject s adds
//     its m comparisons with its successors and the m of its m predecessors with s, and takes from
//     each of those m predecessors exactly one comparison (with the subject now m + 1 places
//     ahead); nothing else moves, since the ring order of the others is unchanged. Removing s is
//     the reverse. L1 change <= 3m. When the ring is shorter than 2m + 1 every pair is compared
//     once (duplicates around the wrap are dropped): adding s adds its (at most 2m) pairs and
//     takes away at most m, so the bound holds there too. Which images of a chosen pair are
//     compared depends on the two subjects only (their keys, image counts and the seed).
//   - A subject without usable images keeps its place on the ring (so that others' pairs do not
//     depend on its data) and yields no comparison.
//   - Each comparison added or removed moves one count: the L1 change of a histogram is at most
//     that of its plan. tests/unit/egress_guard/neighbouring_sensitivity_test.cc checks both
//     empirically on random populations (2 to 300 subjects, 0 to 11 images) for add, remove and
//     both kinds of substitution.
//   - Discrete Laplace noise of scale t = (c_g + 3 floor(c_i / 2)) / epsilon on every (integer)
//     count of both histograms makes the pair epsilon-DP under add/remove; FNMR at FMR, EER,
//     ROC AUC and thresholds derived from the noisy histograms are post-processing and cost
//     nothing more (so is ConsistentCounts).
//   - Identification: a subject's probes are bounded the same way (at most c mated searches, at
//     most c non-mated searches), but a subject's GALLERY image can change the rank or the best
//     candidate of other subjects' searches; that influence is not bounded, so identification
//     releases rely on k-minimum and banding as much as on noise. Stated here so nobody
//     overstates it.
//   - Not covered by the noise: banded counts, the failure-to-enrol rate (rounded to 0.01) and
//     throughput; they are protected by k-minimum and coarsening only. The number of subjects
//     is released as a band (k-minimum), not noised.
//   - The noise is sampled exactly (integers only, from OpenSSL's CSPRNG): no floating-point
//     artefacts to exploit, and every released count is an integer (values on their grid).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/release_derivation.h"
#include "core/metrics/score_histogram.h"

namespace fedface::partner {

// Uniform randomness for the noise. Everything the mechanism draws is built from Bits64 with
// integer arithmetic only.
class NoiseSource {
 public:
  virtual ~NoiseSource() = default;
  // 64 independent uniformly random bits.
  virtual uint64_t Bits64() = 0;
  // A uniform integer in [0, n), exactly (rejection of the biased tail). REQUIRES n >= 1.
  uint64_t UniformBelow(uint64_t n);
};

// OpenSSL's CSPRNG. The only source a running node uses: the vendor must not be able to predict
// or replay the noise (the vendor's request seed never reaches it). Thread-safe.
std::unique_ptr<NoiseSource> MakeSecureNoiseSource();

// Deterministic source for tests and reproducible demos ONLY. Not thread-safe.
class SeededNoiseSource : public NoiseSource {
 public:
  explicit SeededNoiseSource(uint64_t seed) : rng_(seed) {}
  uint64_t Bits64() override { return rng_(); }

 private:
  std::mt19937_64 rng_;
};

// The noise scale as an exact fraction numerator / denominator (> 0 both).
struct NoiseScale {
  uint64_t numerator = 1;
  uint64_t denominator = 1;
  double value() const { return static_cast<double>(numerator) / static_cast<double>(denominator); }
};

// One draw from the discrete Laplace (two-sided geometric) distribution of scale t:
// P(x) proportional to exp(-|x| / t) on the integers. Exact: the sampler of Canonne, Kamath
// and Steinke (2020, "The Discrete Gaussian for Differential Privacy", algorithms 1 and 2) uses
// uniform integers and integer comparisons only, so it has none of the floating-point artefacts
// of inverse-CDF Laplace sampling (Mironov 2012). REQUIRES scale numerator, denominator >= 1.
int64_t SampleDiscreteLaplace(NoiseScale scale, NoiseSource& noise);

// ---- Contribution bounding --------------------------------------------------------------------

// A subject as the planner sees it: a local key (never released) and how many usable images
// (embeddings) it has; images are referred to by index 0..images-1.
struct SubjectImages {
  int64_t subject = 0;
  int images = 0;
};

// One comparison (or search: x is the probe) attributed to the subjects behind it. For mated
// comparisons and searches subject_y == subject_x.
struct AttributedComparison {
  int64_t subject_x = 0;
  int image_x = 0;
  int64_t subject_y = 0;
  int image_y = 0;
};

// Contribution bounds of a verification release: at most `genuine` mated comparisons and at most
// `impostor` impostor comparisons per subject.
struct VerificationBounds {
  int genuine = 0;   // c_g
  int impostor = 0;  // c_i
};

// The L1 sensitivity of each contribution-bounded histogram (and of its part of the plan) under
// adding or removing one subject (the header's argument): genuine c_g, impostor 3 floor(c_i / 2).
struct HistogramSensitivity {
  int64_t genuine = 0;
  int64_t impostor = 0;
};
HistogramSensitivity VerificationSensitivity(VerificationBounds bounds);

// Ring neighbours each subject is compared with: floor(c_i / 2).
inline int ImpostorRingNeighbours(int impostor_bound) { return impostor_bound / 2; }

struct ComparisonPlan {
  VerificationBounds bounds;
  std::vector<AttributedComparison> mated;
  std::vector<AttributedComparison> non_mated;
};

// Verification: for each subject, at most c_g mated image pairs of its own (seeded choice among
// its pairs); impostor pairs from the keyed hash ring (header), each subject with its next
// floor(c_i / 2) subjects, one image pair per subject pair. Deterministic for a given input and
// seed; stable under adding or removing a subject (header). REQUIRES bounds >= 1, distinct
// subject keys.
ComparisonPlan PlanVerificationComparisons(std::span<const SubjectImages> subjects,
                                           VerificationBounds bounds, uint64_t seed);
// The same with c_g = c_i = c.
ComparisonPlan PlanVerificationComparisons(std::span<const SubjectImages> subjects, int c,
                                           uint64_t seed);

// Identification: at most c probe images per subject (seeded choice); the caller runs them as
// mated searches (gallery subjects) or non-mated searches (left-out subjects). Returned as
// AttributedComparison with subject_y == subject_x and image_y == image_x.
std::vector<AttributedComparison> PlanBoundedProbes(std::span<const SubjectImages> subjects, int c,
                                                    uint64_t seed);

// A distance (or the overflow value +inf: an identification miss / no candidate) attributed to
// the subjects behind it.
struct AttributedScore {
  int64_t subject_x = 0;
  int64_t subject_y = 0;
  double distance = 0;
};

// Genuine and impostor histograms in which every subject is behind at most c entries of each.
// Only Build makes one, and Build checks the bound, so holding this type is the guarantee the DP
// step relies on.
class ContributionBoundedHistograms {
 public:
  // Fails (FailedPrecondition, naming the side) when some subject is behind more than c entries
  // of a side (a pair (x, y) with x != y counts for both), or InvalidArgument on NaN or c < 1.
  static absl::StatusOr<ContributionBoundedHistograms> Build(
      VerificationBounds bounds, std::span<const AttributedScore> genuine,
      std::span<const AttributedScore> impostor);
  // The same with c_g = c_i = c.
  static absl::StatusOr<ContributionBoundedHistograms> Build(
      int contribution_bound, std::span<const AttributedScore> genuine,
      std::span<const AttributedScore> impostor);

  VerificationBounds bounds() const { return bounds_; }
  // The larger of the two bounds (the most entries one subject is behind in one histogram).
  int contribution_bound() const { return std::max(bounds_.genuine, bounds_.impostor); }
  const metrics::ScoreHistogram& genuine() const { return genuine_; }
  const metrics::ScoreHistogram& impostor() const { return impostor_; }
  // The same entries over bin layout 2 (core/metrics/release_derivation.h).
  const std::vector<double>& genuine_v2() const { return genuine_v2_; }
  const std::vector<double>& impostor_v2() const { return impostor_v2_; }

 private:
  ContributionBoundedHistograms() = default;
  VerificationBounds bounds_;
  metrics::ScoreHistogram genuine_;
  metrics::ScoreHistogram impostor_;
  std::vector<double> genuine_v2_;
  std::vector<double> impostor_v2_;
};

// ---- The mechanism ----------------------------------------------------------------------------

struct NoisyHistograms {
  metrics::ScoreHistogram genuine;   // noisy integer counts, made consistent
  metrics::ScoreHistogram impostor;  // noisy integer counts, made consistent
  NoiseScale scale;                  // HistogramNoiseScale
  double epsilon = 0;
};

// Noise scale for both histograms of one release: the summed add/remove sensitivity over
// epsilon, (c_g + 3 floor(c_i / 2)) / epsilon, with epsilon taken to 6 decimal places (the
// configuration's resolution). REQUIRES bounds >= 1, epsilon >= 1e-6.
NoiseScale HistogramNoiseScale(VerificationBounds bounds, double epsilon);

// Post-processing of noisy counts (free under DP): metrics::ConsistentCounts
// (core/metrics/release_derivation.h), the isotonic fit of the cumulative counts.
using metrics::ConsistentCounts;

// Adds independent discrete Laplace noise of scale HistogramNoiseScale to every count of both
// histograms, then ConsistentCounts: every released count is a non-negative integer.
// REQUIRES epsilon >= 1e-6.
NoisyHistograms AddDiscreteLaplaceNoise(const ContributionBoundedHistograms& bounded,
                                        double epsilon, NoiseSource& noise);

// ---- The verification release over bin layout 2 (issue 12) ----------------------------------
// Each histogram gets its own share of the histogram epsilon and noise calibrated to its own
// add/remove sensitivity: genuine c_g / epsilon_g, impostor 3 floor(c_i / 2) / epsilon_i, with
// epsilon_i = impostor_share * epsilon (in whole micro-epsilons) and epsilon_g the rest; the two
// add up to epsilon (basic composition). Released counts are the raw noisy integers: no clamping
// and no consistency step on the partner's side (so no bias, and pooling adds unbiased noise);
// metrics::DeriveVerificationMetrics does the post-processing wherever figures are shown.
struct LayoutV2Noise {
  double genuine_epsilon = 0;
  double impostor_epsilon = 0;
  NoiseScale genuine_scale;
  NoiseScale impostor_scale;
};
// REQUIRES bounds.genuine >= 1, bounds.impostor >= 2, epsilon >= 2e-6, 0 < share < 1.
LayoutV2Noise LayoutV2NoiseFor(VerificationBounds bounds, double epsilon, double impostor_share);
// sensitivity / (micro_epsilon / 10^6) as an exact fraction. REQUIRES both >= 1.
NoiseScale SideNoiseScale(int64_t sensitivity, int64_t micro_epsilon);

struct PrivateHistograms {
  std::vector<double> genuine;   // layout 2, raw noisy integers (may be negative)
  std::vector<double> impostor;  // layout 2, raw noisy integers (may be negative)
  LayoutV2Noise noise;
};
PrivateHistograms AddLayoutV2Noise(const ContributionBoundedHistograms& bounded, double epsilon,
                                   double impostor_share, NoiseSource& noise);
// The same from exact layout-2 counts that respect `bounds` (the privacy-utility bench, which
// simulates bounded populations too large to attribute entry by entry).
PrivateHistograms AddLayoutV2Noise(std::span<const double> genuine_v2,
                                   std::span<const double> impostor_v2, VerificationBounds bounds,
                                   double epsilon, double impostor_share, NoiseSource& noise);

// ---- The failure-to-enrol rate ---------------------------------------------------------------

// Under differential privacy the failure-to-enrol rate released is the mean over subjects of
// each subject's own rate (failed / attempted images, in whole hundredths): one subject moves the
// sum of hundredths by at most 100, whatever its images, so discrete Laplace noise of scale
// 100 / epsilon on the sum is epsilon-DP (the number of subjects is public, as above). The exact
// image-weighted rate is not bounded that way (one subject with many failed images moves it
// arbitrarily) and never leaves under differential privacy.
class SubjectFailureRates {
 public:
  // One subject. Subjects without any attempted image are not counted. REQUIRES
  // 0 <= failed <= attempted.
  void Add(int64_t attempted, int64_t failed);
  int64_t subjects() const { return subjects_; }
  int64_t hundredths_sum() const { return hundredths_sum_; }

 private:
  int64_t subjects_ = 0;
  int64_t hundredths_sum_ = 0;
};

// The share of a release's epsilon spent on the failure-to-enrol rate when it is released.
inline constexpr double kFailureRateEpsilonShare = 0.1;
// It is released only when its noise's standard deviation is at most this (else withheld as too
// noisy, which depends on the public subject count and epsilon only, and costs nothing).
inline constexpr double kFailureRateMaxNoiseSd = 0.02;

// Noise scale on the sum of hundredths: 100 / epsilon (epsilon to 6 decimal places).
NoiseScale FailureRateNoiseScale(double epsilon);
// The standard deviation the noise gives the released mean rate, sqrt(2) * 100/epsilon / (100 n).
double FailureRateNoiseSd(int64_t subjects, double epsilon);
// The noisy mean rate, clamped to [0, 1] and rounded to 0.01. REQUIRES rates.subjects() > 0.
double NoisyMeanFailureRate(const SubjectFailureRates& rates, double epsilon, NoiseSource& noise);

}  // namespace fedface::partner
