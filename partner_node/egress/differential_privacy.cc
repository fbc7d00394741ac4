#include "partner_node/egress/differential_privacy.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

// SplitMix64 finaliser: a fixed, platform-independent mixing of 64-bit values, so that a plan
// depends on (seed, keys) only and is the same on every machine and run.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t Hash(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  return Mix(Mix(Mix(Mix(seed) ^ a) ^ b) ^ c);
}

// Domain tags keep the different uses of the seed independent.
constexpr uint64_t kTagMated = 0x6d61746564ULL;  // "mated"
constexpr uint64_t kTagRing = 0x72696e67ULL;     // "ring"
constexpr uint64_t kTagImage = 0x696d616765ULL;  // "image"
constexpr uint64_t kTagProbe = 0x70726f6265ULL;  // "probe"

class SecureNoiseSource : public NoiseSource {
 public:
  uint64_t Bits64() override {
    uint64_t bits = 0;
    std::lock_guard<std::mutex> lock(mu_);
    // RAND_bytes only fails when the CSPRNG cannot be seeded; never fall back to weak noise.
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&bits), sizeof(bits)) != 1) std::abort();
    return bits;
  }

 private:
  std::mutex mu_;
};

// Bernoulli(numerator / denominator), exactly. REQUIRES numerator <= denominator, denominator > 0.
bool BernoulliFraction(uint64_t numerator, uint64_t denominator, NoiseSource& noise) {
  return noise.UniformBelow(denominator) < numerator;
}

// Bernoulli(exp(-numerator / denominator)) for a fraction in [0, 1] (Canonne, Kamath, Steinke
// 2020, algorithm 1: K is the first k with Bernoulli(gamma / k) = 0; the result is "K odd").
bool BernoulliExpMinusUpToOne(uint64_t numerator, uint64_t denominator, NoiseSource& noise) {
  uint64_t k = 1;
  // gamma / k <= 1 / k: the loop ends after a few draws; k * denominator cannot overflow while
  // the drawn Bernoulli keeps succeeding with probability gamma^k / k!.
  while (BernoulliFraction(numerator, denominator * k, noise)) ++k;
  return k % 2 == 1;
}

// Bernoulli(exp(-numerator / denominator)) for any fraction >= 0: exp(-1) once per whole unit.
bool BernoulliExpMinus(uint64_t numerator, uint64_t denominator, NoiseSource& noise) {
  while (numerator > denominator) {
    if (!BernoulliExpMinusUpToOne(1, 1, noise)) return false;
    numerator -= denominator;
  }
  return BernoulliExpMinusUpToOne(numerator, denominator, noise);
}

// At most c distinct pairs (i < j) of n images, chosen by a seeded order.
std::vector<std::pair<int, int>> ChooseOwnPairs(int n, int c, uint64_t seed, int64_t subject) {
  std::vector<std::pair<int, int>> chosen;
  if (n < 2) return chosen;
  const uint64_t pair_count = static_cast<uint64_t>(n) * static_cast<uint64_t>(n - 1) / 2;
  if (pair_count <= 4096) {
    std::vector<std::pair<uint64_t, std::pair<int, int>>> ranked;
    for (int i = 0; i < n; ++i) {
      for (int j = i + 1; j < n; ++j) {
        ranked.push_back({Hash(seed ^ kTagMated, static_cast<uint64_t>(subject),
                               static_cast<uint64_t>(i), static_cast<uint64_t>(j)),
                          {i, j}});
      }
    }
    std::sort(ranked.begin(), ranked.end());
    for (std::size_t k = 0; k < ranked.size() && chosen.size() < static_cast<std::size_t>(c); ++k) {
      chosen.push_back(ranked[k].second);
    }
    return chosen;
  }
  // Many images: draw pairs from a seeded stream until c distinct ones (c << pair_count).
  std::set<std::pair<int, int>> seen;
  for (uint64_t draw = 0; chosen.size() < static_cast<std::size_t>(c); ++draw) {
    const uint64_t h = Hash(seed ^ kTagMated, static_cast<uint64_t>(subject), draw);
    int i = static_cast<int>(h % static_cast<uint64_t>(n));
    int j = static_cast<int>((h >> 32) % static_cast<uint64_t>(n));
    if (i == j) continue;
    if (i > j) std::swap(i, j);
    if (seen.insert({i, j}).second) chosen.push_back({i, j});
  }
  return chosen;
}

absl::Status CheckBound(std::span<const AttributedScore> side, int c, const char* name,
                        metrics::ScoreHistogram& histogram, std::vector<double>& layout_v2) {
  layout_v2.assign(metrics::kLayoutV2Bins, 0.0);
  std::map<int64_t, int> per_subject;
  for (std::size_t k = 0; k < side.size(); ++k) {
    const AttributedScore& s = side[k];
    if (std::isnan(s.distance)) {
      return absl::InvalidArgumentError(
          absl::StrCat("contribution-bounded histograms: ", name, " entry #", k, " is NaN"));
    }
    const bool over = ++per_subject[s.subject_x] > c ||
                      (s.subject_y != s.subject_x && ++per_subject[s.subject_y] > c);
    if (over) {
      return absl::FailedPreconditionError(
          absl::StrCat("contribution-bounded histograms: a subject is behind more than ", c, " ",
                       name, " entries"));
    }
    histogram.Add(s.distance);
    layout_v2[static_cast<std::size_t>(metrics::LayoutV2BinIndex(s.distance))] += 1;
  }
  return absl::OkStatus();
}

}  // namespace

std::unique_ptr<NoiseSource> MakeSecureNoiseSource() {
  return std::make_unique<SecureNoiseSource>();
}

uint64_t NoiseSource::UniformBelow(uint64_t n) {
  // Reject draws from the last, incomplete block of n values so that every residue is equally
  // likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  while (true) {
    const uint64_t x = Bits64();
    if (x < limit) return x % n;
  }
}

int64_t SampleDiscreteLaplace(NoiseScale scale, NoiseSource& noise) {
  // Canonne, Kamath, Steinke 2020, algorithm 2, with scale t / s = numerator / denominator.
  const uint64_t t = scale.numerator;
  const uint64_t s = scale.denominator;
  while (true) {
    const uint64_t u = noise.UniformBelow(t);
    if (!BernoulliExpMinus(u, t, noise)) continue;
    uint64_t v = 0;
    while (BernoulliExpMinus(1, 1, noise)) ++v;
    const uint64_t x = u + t * v;  // geometric with success probability 1 - exp(-1/t)
    const auto y = static_cast<int64_t>(x / s);
    const bool negative = (noise.Bits64() & 1) != 0;
    if (negative && y == 0) continue;  // zero would otherwise be counted twice
    return negative ? -y : y;
  }
}

HistogramSensitivity VerificationSensitivity(VerificationBounds bounds) {
  return HistogramSensitivity{bounds.genuine,
                              3 * static_cast<int64_t>(ImpostorRingNeighbours(bounds.impostor))};
}

ComparisonPlan PlanVerificationComparisons(std::span<const SubjectImages> subjects, int c,
                                           uint64_t seed) {
  return PlanVerificationComparisons(subjects, VerificationBounds{c, c}, seed);
}

ComparisonPlan PlanVerificationComparisons(std::span<const SubjectImages> subjects,
                                           VerificationBounds bounds, uint64_t seed) {
  ComparisonPlan plan;
  plan.bounds = bounds;
  for (const SubjectImages& s : subjects) {
    for (const auto& [i, j] : ChooseOwnPairs(s.images, bounds.genuine, seed, s.subject)) {
      plan.mated.push_back(AttributedComparison{s.subject, i, s.subject, j});
    }
  }
  // The hash ring (header): subjects ordered by a keyed hash of their key, each compared with its
  // next m. Around a short ring (n <= 2m + 1) that is every pair, each taken once.
  const std::size_t n = subjects.size();
  const int m = ImpostorRingNeighbours(bounds.impostor);
  std::vector<std::size_t> order(n);
  for (std::size_t k = 0; k < n; ++k) order[k] = k;
  auto ring_key = [&](std::size_t k) {
    return Hash(seed ^ kTagRing, static_cast<uint64_t>(subjects[k].subject));
  };
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const uint64_t ka = ring_key(a), kb = ring_key(b);
    return ka != kb ? ka < kb : subjects[a].subject < subjects[b].subject;
  });
  const std::size_t reach = n == 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(m), n - 1);
  const bool wraps = n <= 2 * static_cast<std::size_t>(m) + 1;
  std::set<std::pair<int64_t, int64_t>> taken;  // only used on a short ring
  for (std::size_t pos = 0; pos < n; ++pos) {
    for (std::size_t d = 1; d <= reach; ++d) {
      const SubjectImages& a = subjects[order[pos]];
      const SubjectImages& b = subjects[order[(pos + d) % n]];
      const auto [low, high] = std::minmax(
          a, b,
          [](const SubjectImages& x, const SubjectImages& y) { return x.subject < y.subject; });
      if (wraps && !taken.insert({low.subject, high.subject}).second) continue;
      // A subject without usable images keeps its place (others' pairs do not depend on its
      // data) but yields no comparison.
      if (low.images <= 0 || high.images <= 0) continue;
      // The images depend on the two subjects only (not on where the pair sits on the ring).
      const uint64_t h = Hash(seed ^ kTagImage, static_cast<uint64_t>(low.subject),
                              static_cast<uint64_t>(high.subject));
      plan.non_mated.push_back(AttributedComparison{
          low.subject, static_cast<int>(h % static_cast<uint64_t>(low.images)), high.subject,
          static_cast<int>((h >> 32) % static_cast<uint64_t>(high.images))});
    }
  }
  return plan;
}

std::vector<AttributedComparison> PlanBoundedProbes(std::span<const SubjectImages> subjects, int c,
                                                    uint64_t seed) {
  std::vector<AttributedComparison> probes;
  for (const SubjectImages& s : subjects) {
    std::vector<std::pair<uint64_t, int>> ranked;
    for (int i = 0; i < s.images; ++i) {
      ranked.push_back(
          {Hash(seed ^ kTagProbe, static_cast<uint64_t>(s.subject), static_cast<uint64_t>(i)), i});
    }
    std::sort(ranked.begin(), ranked.end());
    for (std::size_t k = 0; k < ranked.size() && k < static_cast<std::size_t>(c); ++k) {
      probes.push_back(
          AttributedComparison{s.subject, ranked[k].second, s.subject, ranked[k].second});
    }
  }
  return probes;
}

absl::StatusOr<ContributionBoundedHistograms> ContributionBoundedHistograms::Build(
    int contribution_bound, std::span<const AttributedScore> genuine,
    std::span<const AttributedScore> impostor) {
  return Build(VerificationBounds{contribution_bound, contribution_bound}, genuine, impostor);
}

absl::StatusOr<ContributionBoundedHistograms> ContributionBoundedHistograms::Build(
    VerificationBounds bounds, std::span<const AttributedScore> genuine,
    std::span<const AttributedScore> impostor) {
  if (bounds.genuine < 1 || bounds.impostor < 1) {
    return absl::InvalidArgumentError("contribution-bounded histograms: the bounds must be >= 1");
  }
  ContributionBoundedHistograms h;
  h.bounds_ = bounds;
  RETURN_IF_ERROR(CheckBound(genuine, bounds.genuine, "genuine", h.genuine_, h.genuine_v2_));
  RETURN_IF_ERROR(CheckBound(impostor, bounds.impostor, "impostor", h.impostor_, h.impostor_v2_));
  return h;
}

NoiseScale HistogramNoiseScale(VerificationBounds bounds, double epsilon) {
  // epsilon = e / 10^6, so sensitivity / epsilon = sensitivity * 10^6 / e, reduced.
  const HistogramSensitivity s = VerificationSensitivity(bounds);
  const auto micro = static_cast<uint64_t>(std::llround(epsilon * 1e6));
  const uint64_t numerator = static_cast<uint64_t>(s.genuine + s.impostor) * 1000000;
  const uint64_t g = std::gcd(numerator, micro);
  return NoiseScale{numerator / g, micro / g};
}

NoisyHistograms AddDiscreteLaplaceNoise(const ContributionBoundedHistograms& bounded,
                                        double epsilon, NoiseSource& noise) {
  NoisyHistograms out;
  out.epsilon = epsilon;
  out.scale = HistogramNoiseScale(bounded.bounds(), epsilon);
  auto noisy = [&](const metrics::ScoreHistogram& h) {
    std::vector<double> raw(h.counts());
    for (double& v : raw) v += static_cast<double>(SampleDiscreteLaplace(out.scale, noise));
    // Lengths are the fixed bin count by construction; FromCounts cannot fail here.
    return *metrics::ScoreHistogram::FromCounts(ConsistentCounts(raw));
  };
  out.genuine = noisy(bounded.genuine());
  out.impostor = noisy(bounded.impostor());
  return out;
}

NoiseScale SideNoiseScale(int64_t sensitivity, int64_t micro_epsilon) {
  const uint64_t numerator = static_cast<uint64_t>(sensitivity) * 1000000;
  const uint64_t g = std::gcd(numerator, static_cast<uint64_t>(micro_epsilon));
  return NoiseScale{numerator / g, static_cast<uint64_t>(micro_epsilon) / g};
}

LayoutV2Noise LayoutV2NoiseFor(VerificationBounds bounds, double epsilon, double impostor_share) {
  // Whole micro-epsilons on both sides, so that the two shares add up to epsilon exactly.
  const int64_t micro = std::llround(epsilon * 1e6);
  const int64_t impostor_micro =
      std::clamp<int64_t>(std::llround(static_cast<double>(micro) * impostor_share), 1, micro - 1);
  const HistogramSensitivity s = VerificationSensitivity(bounds);
  LayoutV2Noise n;
  n.genuine_epsilon = static_cast<double>(micro - impostor_micro) / 1e6;
  n.impostor_epsilon = static_cast<double>(impostor_micro) / 1e6;
  n.genuine_scale = SideNoiseScale(s.genuine, micro - impostor_micro);
  n.impostor_scale = SideNoiseScale(s.impostor, impostor_micro);
  return n;
}

PrivateHistograms AddLayoutV2Noise(const ContributionBoundedHistograms& bounded, double epsilon,
                                   double impostor_share, NoiseSource& noise) {
  return AddLayoutV2Noise(bounded.genuine_v2(), bounded.impostor_v2(), bounded.bounds(), epsilon,
                          impostor_share, noise);
}

PrivateHistograms AddLayoutV2Noise(std::span<const double> genuine_v2,
                                   std::span<const double> impostor_v2, VerificationBounds bounds,
                                   double epsilon, double impostor_share, NoiseSource& noise) {
  PrivateHistograms out;
  out.noise = LayoutV2NoiseFor(bounds, epsilon, impostor_share);
  auto noisy = [&](std::span<const double> exact, NoiseScale scale) {
    std::vector<double> raw(exact.begin(), exact.end());
    for (double& v : raw) v += static_cast<double>(SampleDiscreteLaplace(scale, noise));
    return raw;  // not clamped: a count may be negative (post-processing is the vendor's)
  };
  out.genuine = noisy(genuine_v2, out.noise.genuine_scale);
  out.impostor = noisy(impostor_v2, out.noise.impostor_scale);
  return out;
}

void SubjectFailureRates::Add(int64_t attempted, int64_t failed) {
  if (attempted <= 0) return;
  ++subjects_;
  // Integer rounding of 100 * failed / attempted, in [0, 100].
  hundredths_sum_ +=
      (200 * std::clamp<int64_t>(failed, 0, attempted) + attempted) / (2 * attempted);
}

NoiseScale FailureRateNoiseScale(double epsilon) {
  const auto micro = static_cast<uint64_t>(std::llround(epsilon * 1e6));
  const uint64_t numerator = 100ULL * 1000000;
  const uint64_t g = std::gcd(numerator, micro);
  return NoiseScale{numerator / g, micro / g};
}

double FailureRateNoiseSd(int64_t subjects, double epsilon) {
  if (subjects <= 0 || !(epsilon > 0)) return std::numeric_limits<double>::infinity();
  return std::sqrt(2.0) / (epsilon * static_cast<double>(subjects));
}

double NoisyMeanFailureRate(const SubjectFailureRates& rates, double epsilon, NoiseSource& noise) {
  const int64_t noisy =
      rates.hundredths_sum() + SampleDiscreteLaplace(FailureRateNoiseScale(epsilon), noise);
  const double mean = static_cast<double>(noisy) / (100.0 * static_cast<double>(rates.subjects()));
  return std::round(std::clamp(mean, 0.0, 1.0) * 100.0) / 100.0;
}

}  // namespace fedface::partner
