#include "partner_node/serve/evaluation_protocols.h"

#include <faiss/IndexFlat.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/metrics/identification_metrics.h"
#include "partner_node/egress/differential_privacy.h"

namespace fedface::partner {
namespace {

using fedface::v1::EvaluationProtocol;

constexpr double kMiss = std::numeric_limits<double>::infinity();
constexpr uint64_t kPollEvery = 4096;
// Tags that keep the seeded choices of different purposes independent.
constexpr uint64_t kTagHoldout = 0x686f6c646f7574ULL;  // "holdout"
constexpr uint64_t kTagEnrol = 0x656e726f6cULL;        // "enrol"

// SplitMix64's finaliser: a well-mixed 64-bit hash of (a, b).
uint64_t Mix(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform integer in [0, n) without modulo bias; the same on every platform (unlike
// std::uniform_int_distribution, whose algorithm is the library's choice).
uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit =
      std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

// Polls the interruption callback every kPollEvery steps.
class Poller {
 public:
  explicit Poller(const std::function<absl::Status()>& f) : f_(f) {}
  absl::Status Step() {
    if (!f_ || ++n_ % kPollEvery != 0) return absl::OkStatus();
    return f_();
  }
  absl::Status Now() const { return f_ ? f_() : absl::OkStatus(); }

 private:
  const std::function<absl::Status()>& f_;
  uint64_t n_ = 0;
};

absl::Status TooLarge(const char* what, uint64_t limit) {
  return absl::FailedPreconditionError(absl::StrCat("the request needs more ", what,
                                                    " than this partner runs per request (", limit,
                                                    "); ask for a smaller non_mated_sample_size"));
}

double Distance(const Embedding& a, const Embedding& b) {
  return static_cast<double>(EuclideanDistance(a, b));
}

// The subjects as the DP planners see them.
std::vector<SubjectImages> PlannerSubjects(const EvaluationCohort& cohort) {
  std::vector<SubjectImages> out;
  out.reserve(cohort.subjects.size());
  for (const CohortSubject& s : cohort.subjects) {
    out.push_back(SubjectImages{s.key, static_cast<int>(s.images.size())});
  }
  return out;
}

void FillCohortCounts(const EvaluationCohort& cohort, EvaluationAggregate& a) {
  a.cohort.subjects = cohort.subjects_attempted;
  a.cohort.images = cohort.images_attempted;
  a.cohort.failures_to_enrol = cohort.failures_to_enrol;
  for (const CohortSubject& s : cohort.subjects) {
    a.failure_rates.Add(static_cast<int64_t>(s.images.size()) + s.failures_to_enrol,
                        s.failures_to_enrol);
  }
}

int64_t CountTrue(const std::vector<bool>& v) {
  return static_cast<int64_t>(std::count(v.begin(), v.end(), true));
}

// ---- Verification -------------------------------------------------------------------------

absl::StatusOr<EvaluationAggregate> VerificationExact(const EvaluationCohort& cohort,
                                                      const ProtocolOptions& options) {
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  FillCohortCounts(cohort, a);
  Poller poll(options.interrupted);

  // Images flattened in cohort order; subject s holds [begin[s], begin[s + 1]).
  std::vector<const Embedding*> image;
  std::vector<size_t> owner;
  std::vector<uint64_t> begin = {0};
  for (size_t s = 0; s < cohort.subjects.size(); ++s) {
    for (const Embedding& e : cohort.subjects[s].images) {
      image.push_back(&e);
      owner.push_back(s);
    }
    begin.push_back(image.size());
  }
  const uint64_t n = image.size();
  std::vector<bool> mated_subject(cohort.subjects.size()),
      non_mated_subject(cohort.subjects.size());

  uint64_t mated_total = 0;
  for (size_t s = 0; s < cohort.subjects.size(); ++s) {
    const uint64_t k = begin[s + 1] - begin[s];
    mated_total += k > 1 ? k * (k - 1) / 2 : 0;
  }
  if (mated_total > options.max_comparisons)
    return TooLarge("mated comparisons", options.max_comparisons);
  for (size_t s = 0; s < cohort.subjects.size(); ++s) {
    for (uint64_t i = begin[s]; i < begin[s + 1]; ++i) {
      for (uint64_t j = i + 1; j < begin[s + 1]; ++j) {
        RETURN_IF_ERROR(poll.Step());
        a.genuine.Add(Distance(*image[i], *image[j]));
        mated_subject[s] = true;
      }
    }
  }
  a.cohort.mated_comparisons = static_cast<int64_t>(mated_total);

  // Non-mated pairs (i, j), i < j, different subjects: image i pairs with every image from the
  // end of its subject on. prefix[i] = pairs of images before i, so pair index p belongs to the
  // image i with prefix[i] <= p < prefix[i + 1].
  std::vector<uint64_t> prefix(n + 1, 0);
  for (uint64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + (n - begin[owner[i] + 1]);
  const uint64_t total = prefix[n];
  auto compare = [&](uint64_t p) {
    const uint64_t i =
        static_cast<uint64_t>(std::upper_bound(prefix.begin(), prefix.end(), p) - prefix.begin()) -
        1;
    const uint64_t j = begin[owner[i] + 1] + (p - prefix[i]);
    a.impostor.Add(Distance(*image[i], *image[j]));
    non_mated_subject[owner[i]] = true;
    non_mated_subject[owner[j]] = true;
  };
  const uint64_t wanted = options.non_mated_sample_size;
  if (wanted == 0 || wanted >= total) {
    if (total > options.max_comparisons) {
      return TooLarge("non-mated comparisons", options.max_comparisons);
    }
    for (uint64_t i = 0; i < n; ++i) {
      for (uint64_t j = begin[owner[i] + 1]; j < n; ++j) {
        RETURN_IF_ERROR(poll.Step());
        a.impostor.Add(Distance(*image[i], *image[j]));
        non_mated_subject[owner[i]] = true;
        non_mated_subject[owner[j]] = true;
      }
    }
    a.cohort.non_mated_comparisons = static_cast<int64_t>(total);
  } else {
    if (wanted > options.max_comparisons) {
      return TooLarge("non-mated comparisons", options.max_comparisons);
    }
    // Floyd's algorithm: `wanted` distinct pair indexes, uniformly, in O(wanted).
    std::mt19937_64 rng(options.seed);
    std::unordered_set<uint64_t> chosen;
    chosen.reserve(wanted * 2);
    for (uint64_t j = total - wanted; j < total; ++j) {
      const uint64_t t = UniformBelow(rng, j + 1);
      if (!chosen.insert(t).second) chosen.insert(j);
    }
    std::vector<uint64_t> pairs(chosen.begin(), chosen.end());
    std::sort(pairs.begin(), pairs.end());
    for (uint64_t p : pairs) {
      RETURN_IF_ERROR(poll.Step());
      compare(p);
    }
    a.cohort.non_mated_comparisons = static_cast<int64_t>(pairs.size());
  }
  a.cohort.mated_subjects = CountTrue(mated_subject);
  a.cohort.non_mated_subjects = CountTrue(non_mated_subject);
  return a;
}

absl::StatusOr<EvaluationAggregate> VerificationBounded(const EvaluationCohort& cohort,
                                                        const ProtocolOptions& options) {
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  FillCohortCounts(cohort, a);
  Poller poll(options.interrupted);
  const std::vector<SubjectImages> planner = PlannerSubjects(cohort);
  const VerificationBounds bounds =
      options.verification_bounds.genuine > 0
          ? options.verification_bounds
          : VerificationBounds{options.contribution_bound, options.contribution_bound};
  ComparisonPlan plan = PlanVerificationComparisons(planner, bounds, options.seed);
  // The request's non_mated_sample_size is NOT applied here: a prefix of the ring order (or any
  // cut whose position depends on the others) would let one added or removed subject shift
  // comparisons far from it, beyond the sensitivity the noise covers (differential_privacy.h).
  // Under differential privacy the partner's impostor bound alone sets how many there are.
  if (plan.mated.size() > options.max_comparisons) {
    return TooLarge("mated comparisons", options.max_comparisons);
  }
  if (plan.non_mated.size() > options.max_comparisons) {
    return TooLarge("non-mated comparisons", options.max_comparisons);
  }
  std::unordered_map<int64_t, size_t> index;
  for (size_t s = 0; s < cohort.subjects.size(); ++s) index[cohort.subjects[s].key] = s;
  auto embedding = [&](int64_t key, int i) -> const Embedding* {
    auto it = index.find(key);
    if (it == index.end()) return nullptr;
    const std::vector<Embedding>& images = cohort.subjects[it->second].images;
    return i >= 0 && static_cast<size_t>(i) < images.size() ? &images[i] : nullptr;
  };
  std::vector<bool> mated_subject(cohort.subjects.size()),
      non_mated_subject(cohort.subjects.size());
  auto score = [&](const std::vector<AttributedComparison>& plan_side,
                   std::vector<bool>& involved) -> absl::StatusOr<std::vector<AttributedScore>> {
    std::vector<AttributedScore> out;
    out.reserve(plan_side.size());
    for (const AttributedComparison& c : plan_side) {
      RETURN_IF_ERROR(poll.Step());
      const Embedding* x = embedding(c.subject_x, c.image_x);
      const Embedding* y = embedding(c.subject_y, c.image_y);
      if (x == nullptr || y == nullptr) {
        return absl::InternalError("evaluation: the comparison plan names an unknown image");
      }
      out.push_back(AttributedScore{c.subject_x, c.subject_y, Distance(*x, *y)});
      involved[index[c.subject_x]] = true;
      involved[index[c.subject_y]] = true;
    }
    return out;
  };
  ASSIGN_OR_RETURN(std::vector<AttributedScore> genuine, score(plan.mated, mated_subject));
  ASSIGN_OR_RETURN(std::vector<AttributedScore> impostor, score(plan.non_mated, non_mated_subject));
  absl::StatusOr<ContributionBoundedHistograms> bounded =
      ContributionBoundedHistograms::Build(bounds, genuine, impostor);
  if (!bounded.ok()) return absl::InternalError(bounded.status().message());
  a.genuine = bounded->genuine();
  a.impostor = bounded->impostor();
  a.bounded = *std::move(bounded);
  a.cohort.mated_comparisons = static_cast<int64_t>(plan.mated.size());
  a.cohort.non_mated_comparisons = static_cast<int64_t>(plan.non_mated.size());
  a.cohort.mated_subjects = CountTrue(mated_subject);
  a.cohort.non_mated_subjects = CountTrue(non_mated_subject);
  return a;
}

// ---- Identification -----------------------------------------------------------------------

struct Search {
  size_t subject = 0;  // index into cohort.subjects
  int image = 0;
};

absl::StatusOr<EvaluationAggregate> Identification(const EvaluationCohort& cohort,
                                                   const ProtocolOptions& options) {
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  FillCohortCounts(cohort, a);
  Poller poll(options.interrupted);
  const size_t n = cohort.subjects.size();

  // Seeded order of the subjects by key alone; the first `holdout` are left out.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  auto rank_key = [&](size_t s) {
    return Mix(options.seed ^ kTagHoldout, static_cast<uint64_t>(cohort.subjects[s].key));
  };
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    const uint64_t kx = rank_key(x), ky = rank_key(y);
    return kx != ky ? kx < ky : cohort.subjects[x].key < cohort.subjects[y].key;
  });
  size_t holdout = 0;
  if (n >= 2) {
    holdout = static_cast<size_t>(
        std::llround(static_cast<double>(n) * options.identification_holdout_percent / 100.0));
    holdout = std::clamp<size_t>(holdout, 1, n - 1);
  }
  std::vector<bool> held_out(n, false);
  for (size_t k = 0; k < holdout; ++k) held_out[order[k]] = true;

  // The gallery: one seeded image per remaining subject.
  std::vector<size_t> gallery_subject;  // gallery row -> cohort subject
  std::vector<float> gallery;           // rows of kEmbeddingDim
  std::vector<int> enrolled_image(n, -1);
  for (size_t s = 0; s < n; ++s) {
    const CohortSubject& subject = cohort.subjects[s];
    if (held_out[s] || subject.images.empty()) continue;
    enrolled_image[s] = static_cast<int>(
        Mix(options.seed ^ kTagEnrol, static_cast<uint64_t>(subject.key)) % subject.images.size());
    const Embedding& e = subject.images[static_cast<size_t>(enrolled_image[s])];
    gallery.insert(gallery.end(), e.begin(), e.end());
    gallery_subject.push_back(s);
  }

  // The searches: a gallery subject's other images (mated), a held-out subject's images
  // (non-mated); at most c of each subject's when contributions are bounded.
  std::vector<Search> mated_searches, non_mated_searches;
  if (options.contribution_bound > 0) {
    std::vector<SubjectImages> probes;
    for (size_t s = 0; s < n; ++s) {
      const int count = static_cast<int>(cohort.subjects[s].images.size());
      probes.push_back(
          SubjectImages{cohort.subjects[s].key, held_out[s] ? count : std::max(count - 1, 0)});
    }
    std::unordered_map<int64_t, size_t> index;
    for (size_t s = 0; s < n; ++s) index[cohort.subjects[s].key] = s;
    for (const AttributedComparison& p :
         PlanBoundedProbes(probes, options.contribution_bound, options.seed)) {
      const size_t s = index.at(p.subject_x);
      if (held_out[s]) {
        non_mated_searches.push_back(Search{s, p.image_x});
      } else {
        // Probe index k skips the enrolled image.
        const int image = p.image_x < enrolled_image[s] ? p.image_x : p.image_x + 1;
        mated_searches.push_back(Search{s, image});
      }
    }
  } else {
    for (size_t s = 0; s < n; ++s) {
      for (int i = 0; i < static_cast<int>(cohort.subjects[s].images.size()); ++i) {
        if (held_out[s]) {
          non_mated_searches.push_back(Search{s, i});
        } else if (i != enrolled_image[s]) {
          mated_searches.push_back(Search{s, i});
        }
      }
    }
  }
  if (mated_searches.size() > options.max_comparisons) {
    return TooLarge("mated searches", options.max_comparisons);
  }
  if (non_mated_searches.size() > options.max_comparisons) {
    return TooLarge("non-mated searches", options.max_comparisons);
  }

  // Rank-1 searches, all in one exact FAISS call (one parallel region, BLAS for large batches);
  // the winner's distance is then recomputed exactly, so bins do not depend on FAISS rounding.
  RETURN_IF_ERROR(poll.Now());
  std::vector<Search> searches = mated_searches;
  searches.insert(searches.end(), non_mated_searches.begin(), non_mated_searches.end());
  std::vector<int64_t> nearest(searches.size(), -1);  // gallery row, -1: empty gallery
  if (!gallery_subject.empty() && !searches.empty()) {
    std::vector<float> probes;
    probes.reserve(searches.size() * kEmbeddingDim);
    for (const Search& q : searches) {
      const Embedding& e = cohort.subjects[q.subject].images[static_cast<size_t>(q.image)];
      probes.insert(probes.end(), e.begin(), e.end());
    }
    std::vector<float> distances(searches.size());
    std::vector<faiss::Index::idx_t> labels(searches.size());
    try {
      faiss::IndexFlatL2 index(kEmbeddingDim);
      index.add(static_cast<faiss::Index::idx_t>(gallery_subject.size()), gallery.data());
      index.search(static_cast<faiss::Index::idx_t>(searches.size()), probes.data(), 1,
                   distances.data(), labels.data());
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("evaluation: 1:N search failed: ", e.what()));
    }
    for (size_t i = 0; i < searches.size(); ++i) nearest[i] = labels[i];
  }
  RETURN_IF_ERROR(poll.Now());

  std::vector<metrics::MatedSearch> mated;
  std::vector<metrics::NonMatedSearch> non_mated;
  std::vector<AttributedScore> genuine_scores, impostor_scores;
  std::vector<bool> mated_subject(n), non_mated_subject(n);
  for (size_t i = 0; i < searches.size(); ++i) {
    const Search& q = searches[i];
    const int64_t key = cohort.subjects[q.subject].key;
    std::optional<double> best;
    bool mate_first = false;
    if (nearest[i] >= 0 && static_cast<size_t>(nearest[i]) < gallery_subject.size()) {
      const size_t winner = gallery_subject[static_cast<size_t>(nearest[i])];
      best = Distance(cohort.subjects[q.subject].images[static_cast<size_t>(q.image)],
                      cohort.subjects[winner].images[static_cast<size_t>(enrolled_image[winner])]);
      mate_first = winner == q.subject;
    }
    if (i < mated_searches.size()) {
      metrics::MatedSearch m;
      if (mate_first) {
        m.mate_rank = 1;
        m.mate_distance = *best;
      }
      mated.push_back(m);
      genuine_scores.push_back(AttributedScore{key, key, m.mate_rank ? m.mate_distance : kMiss});
      mated_subject[q.subject] = true;
    } else {
      metrics::NonMatedSearch m;
      m.best_distance = best;
      non_mated.push_back(m);
      impostor_scores.push_back(AttributedScore{key, key, best.value_or(kMiss)});
      non_mated_subject[q.subject] = true;
    }
  }

  if (options.contribution_bound > 0) {
    absl::StatusOr<ContributionBoundedHistograms> bounded = ContributionBoundedHistograms::Build(
        options.contribution_bound, genuine_scores, impostor_scores);
    if (!bounded.ok()) return absl::InternalError(bounded.status().message());
    a.genuine = bounded->genuine();
    a.impostor = bounded->impostor();
    a.bounded = *std::move(bounded);
  } else {
    a.genuine = metrics::Rank1MateHistogram(mated);
    a.impostor = metrics::BestCandidateHistogram(non_mated);
  }
  a.cohort.mated_comparisons = static_cast<int64_t>(mated.size());
  a.cohort.non_mated_comparisons = static_cast<int64_t>(non_mated.size());
  a.cohort.mated_subjects = CountTrue(mated_subject);
  a.cohort.non_mated_subjects = CountTrue(non_mated_subject);
  return a;
}

}  // namespace

absl::StatusOr<EvaluationAggregate> RunEvaluationProtocol(const EvaluationCohort& cohort,
                                                          EvaluationProtocol protocol,
                                                          const ProtocolOptions& options) {
  if (options.contribution_bound < 0 || options.identification_holdout_percent < 0 ||
      options.identification_holdout_percent > 100) {
    return absl::InternalError("evaluation: invalid protocol options");
  }
  absl::StatusOr<EvaluationAggregate> out;
  switch (protocol) {
    case fedface::v1::EVALUATION_PROTOCOL_VERIFICATION:
      out = options.contribution_bound > 0 ? VerificationBounded(cohort, options)
                                           : VerificationExact(cohort, options);
      break;
    case fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION:
      out = Identification(cohort, options);
      break;
    default:
      return absl::InvalidArgumentError("protocol must be verification or identification");
  }
  return out;
}

}  // namespace fedface::partner
