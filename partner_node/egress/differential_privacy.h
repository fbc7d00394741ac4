// Differential privacy for evaluation releases: per-subject contribution bounding (seeded
// sampling), the discrete Laplace mechanism on histogram counts, and the noise source.
//
// Privacy unit and neighbouring relation: a SUBJECT; two evaluation datasets are neighbours when
// they hold the same subjects and differ in everything about ONE subject (its images, their
// embeddings, its failures to enrol): substitution ("bounded") DP. The set of subject keys and
// their number are treated as public to the mechanism (their count is released as a band anyway).
//
// Why the sensitivity is 2c per histogram:
//   - PlanVerificationComparisons picks WHICH subject pairs are compared from the subject keys
//     and the seed alone (greedy over a seeded order, at most c per subject), and which images
//     of a chosen pair from the two subjects' own image counts. Changing one subject s therefore
//     changes only the at most c comparisons that involve s in each histogram;
//   - each changed comparison moves one count from one bin to another (or removes/adds one):
//     L1 change <= 2 per comparison, <= 2c per histogram, <= 4c for the genuine and impostor
//     histograms together. Discrete Laplace noise of scale t = 4c / epsilon on every (integer)
//     count of both histograms makes the pair epsilon-DP; FNMR at FMR, EER, ROC AUC and thresholds
//     derived from the noisy histograms are post-processing and cost nothing more (so is
//     ConsistentCounts).
//   - Identification: a subject's probes are bounded the same way (at most c mated searches, at
//     most c non-mated searches), but a subject's GALLERY image can change the rank or the best
//     candidate of other subjects' searches; that influence is not bounded, so identification
//     releases rely on k-minimum and banding as much as on noise. Stated here so nobody
//     overstates it.
//   - Not covered by the noise: banded counts, the failure-to-enrol rate (rounded to 0.01) and
//     throughput; they are protected by k-minimum and coarsening only.
//   - The noise is sampled exactly (integers only, from OpenSSL's CSPRNG): no floating-point
//     artefacts to exploit, and every released count is an integer (values on their grid).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
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

struct ComparisonPlan {
  int contribution_bound = 0;  // c
  std::vector<AttributedComparison> mated;
  std::vector<AttributedComparison> non_mated;
};

// Verification: for each subject, at most c mated image pairs of its own (seeded choice among
// its pairs); at most c non-mated comparisons per subject, one image pair per chosen subject
// pair (subject pairs chosen greedily over a seeded order of all pairs, a pair taken while both
// subjects are below c; the choice depends on the keys and the seed only). Deterministic for a
// given input and seed. REQUIRES c >= 1, distinct subject keys.
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
      int contribution_bound, std::span<const AttributedScore> genuine,
      std::span<const AttributedScore> impostor);

  int contribution_bound() const { return contribution_bound_; }
  const metrics::ScoreHistogram& genuine() const { return genuine_; }
  const metrics::ScoreHistogram& impostor() const { return impostor_; }

 private:
  ContributionBoundedHistograms() = default;
  int contribution_bound_ = 0;
  metrics::ScoreHistogram genuine_;
  metrics::ScoreHistogram impostor_;
};

// ---- The mechanism ----------------------------------------------------------------------------

struct NoisyHistograms {
  metrics::ScoreHistogram genuine;   // noisy integer counts, made consistent
  metrics::ScoreHistogram impostor;  // noisy integer counts, made consistent
  NoiseScale scale;                  // 4c / epsilon
  double epsilon = 0;
};

// Noise scale for both histograms of one release: 4c / epsilon, with epsilon taken to 6
// decimal places (the configuration's resolution). REQUIRES c >= 1, epsilon >= 1e-6.
NoiseScale HistogramNoiseScale(int contribution_bound, double epsilon);

// Post-processing of noisy counts (free under DP): the cumulative counts are replaced by the
// closest nondecreasing sequence (least squares, pool-adjacent-violators; Hay et al. 2010,
// "Boosting the accuracy of differentially private histograms through consistency"), clamped
// to [0, total], rounded to integers and differenced. The result has no negative count and,
// unlike clamping each bin at 0, no upward bias in the ~200 empty bins that would swamp FMR at
// low thresholds. Where the noisy cumulative counts are already nondecreasing, integer counts
// are unchanged.
std::vector<double> ConsistentCounts(std::span<const double> noisy);

// Adds independent discrete Laplace noise of scale HistogramNoiseScale to every count of both
// histograms, then ConsistentCounts: every released count is a non-negative integer.
// REQUIRES epsilon >= 1e-6.
NoisyHistograms AddDiscreteLaplaceNoise(const ContributionBoundedHistograms& bounded,
                                        double epsilon, NoiseSource& noise);

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
