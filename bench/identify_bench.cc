// 1:N search at scale (issue 13 item 3): FaceIndex over synthetic face-like embeddings.
//   build/bench/identify_bench [--quick] [--json] [--sizes 10000,100000,1000000] [--queries N]
//                              [--nprobe N] [--approximate-from N] [--hnsw]
// Per size: build time, RSS growth of the build, p50/p99 latency of FaceIndex::Search (top_k 1,
// one thread: the search holds FAISS's OpenMP to its caller), CPU/wall over the queries (1.0 =
// one core), recall@1 against an exact scan for mated probes (a new photo of an enrolled subject)
// and non-mated probes (nobody enrolled: the nearest is a far, near-tied impostor), and the
// match decision at the 0.6 threshold agreeing with the exact scan. Sizes up to 100k are also
// measured with the flat (exact) layout forced, which is what the layout threshold rests on.
// --hnsw adds FAISS's IndexHNSWFlat (M 32) at sizes up to 100k, for the choice in face_index.h.
//
// The data: subjects' centres around a common direction (pairwise ~1.0 apart, like dlib's
// descriptors of different people: 0.8-1.2), 3 embeddings per subject scattered so that photos
// of one person are ~0.3-0.6 apart; unit length, 128-d. Printed: measured genuine and impostor
// nearest distances, so the shape can be checked.
#include <faiss/IndexHNSW.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/face_index.h"

namespace fedface::partner {
namespace {

constexpr int kPerSubject = 3;
constexpr float kThreshold = 0.6f;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double CpuSeconds(clockid_t clock = CLOCK_PROCESS_CPUTIME_ID) {
  timespec t{};
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// From /proc/self/status, in MiB: "VmRSS" now, "VmHWM" the peak.
double StatusMiB(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atof(line.c_str() + key.size() + 1) / 1024.0;
  }
  return 0;
}

void Normalize(float* v) {
  double norm = 0;
  for (int d = 0; d < kEmbeddingDim; ++d) norm += double{v[d]} * v[d];
  const double inv = 1.0 / std::sqrt(norm);
  for (int d = 0; d < kEmbeddingDim; ++d) v[d] = static_cast<float>(v[d] * inv);
}

// Face-like synthetic embeddings: subject s's photos are around centre s.
class Faces {
 public:
  explicit Faces(uint64_t seed) : rng_(seed) {
    std::normal_distribution<float> normal;
    for (float& v : common_) v = normal(rng_);
    Normalize(common_.data());
  }

  // A new subject's centre and spread.
  void NewSubject(std::vector<float>* centre, float* spread) {
    std::normal_distribution<float> normal(0.f, 1.f / std::sqrt(float{kEmbeddingDim}));
    centre->resize(kEmbeddingDim);
    for (int d = 0; d < kEmbeddingDim; ++d) (*centre)[d] = common_[d] + normal(rng_);
    Normalize(centre->data());
    *spread = std::uniform_real_distribution<float>(0.22f, 0.42f)(rng_);
  }

  // A photo of the subject: its centre moved by `spread` in a random direction.
  void Photo(const std::vector<float>& centre, float spread, float* out) {
    std::normal_distribution<float> normal(0.f, spread / std::sqrt(float{kEmbeddingDim}));
    for (int d = 0; d < kEmbeddingDim; ++d) out[d] = centre[d] + normal(rng_);
    Normalize(out);
  }

  std::mt19937_64& rng() { return rng_; }

 private:
  std::mt19937_64 rng_;
  std::array<float, kEmbeddingDim> common_{};
};

struct Gallery {
  std::vector<float> vectors;  // n x 128
  std::vector<std::vector<float>> centres;
  std::vector<float> spreads;
  int64_t size() const { return static_cast<int64_t>(vectors.size() / kEmbeddingDim); }
  int64_t SubjectOf(int64_t row) const { return row / kPerSubject; }
};

Gallery MakeGallery(int64_t n, Faces& faces) {
  Gallery g;
  g.vectors.resize(n * kEmbeddingDim);
  for (int64_t row = 0; row < n; ++row) {
    if (row % kPerSubject == 0) {
      g.centres.emplace_back();
      g.spreads.push_back(0);
      faces.NewSubject(&g.centres.back(), &g.spreads.back());
    }
    faces.Photo(g.centres.back(), g.spreads.back(), &g.vectors[row * kEmbeddingDim]);
  }
  return g;
}

struct Probes {
  std::vector<float> vectors;
  int mated = 0;  // the first `mated` are photos of enrolled subjects
  int size() const { return static_cast<int>(vectors.size() / kEmbeddingDim); }
};

Probes MakeProbes(const Gallery& g, int mated, int non_mated, Faces& faces) {
  Probes p;
  p.mated = mated;
  p.vectors.resize((mated + non_mated) * kEmbeddingDim);
  std::uniform_int_distribution<size_t> subject(0, g.centres.size() - 1);
  for (int q = 0; q < mated + non_mated; ++q) {
    std::vector<float> centre;
    float spread = 0;
    if (q < mated) {
      const size_t s = subject(faces.rng());
      centre = g.centres[s];
      spread = g.spreads[s];
    } else {
      faces.NewSubject(&centre, &spread);
    }
    faces.Photo(centre, spread, &p.vectors[q * kEmbeddingDim]);
  }
  return p;
}

float ExactDistance(const float* a, const float* b) {
  double sum = 0;
  for (int d = 0; d < kEmbeddingDim; ++d) {
    const double diff = double{a[d]} - b[d];
    sum += diff * diff;
  }
  return static_cast<float>(std::sqrt(sum));
}

struct Truth {
  std::vector<int64_t> row;  // each probe's nearest gallery row
  std::vector<float> distance;
};

// The exact nearest rows: FAISS's batched scan for 8 candidates, re-ranked in double.
Truth BruteForce(const Gallery& g, const Probes& p) {
  constexpr int kCandidates = 8;
  const int k = static_cast<int>(std::min<int64_t>(kCandidates, g.size()));
  std::vector<float> d(p.size() * k);
  std::vector<int64_t> ids(p.size() * k);
  faiss::knn_L2sqr(p.vectors.data(), g.vectors.data(), kEmbeddingDim, p.size(), g.size(), k,
                   d.data(), ids.data());
  Truth t;
  for (int q = 0; q < p.size(); ++q) {
    const float* probe = &p.vectors[q * kEmbeddingDim];
    int64_t best = -1;
    float best_d = 0;
    for (int c = 0; c < k; ++c) {
      const int64_t row = ids[q * k + c];
      if (row < 0) continue;
      const float dist = ExactDistance(probe, &g.vectors[row * kEmbeddingDim]);
      if (best < 0 || dist < best_d || (dist == best_d && row < best)) best = row, best_d = dist;
    }
    t.row.push_back(best);
    t.distance.push_back(best_d);
  }
  return t;
}

struct Row {
  std::string layout;
  int64_t size = 0;
  double build_s = 0, build_cpu_s = 0, rss_mib = 0, p50_ms = 0, p99_ms = 0, max_ms = 0,
         process_per_thread_cpu = 0;
  double cpu_p50_ms = 0, cpu_p99_ms = 0;  // the searching thread's CPU time: immune to preemption
  double recall_mated = 0, recall_non_mated = 0, decision_agreement = 0, max_distance_error = 0;
};

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

// Times `search(q)` -> (gallery row of the nearest, its distance) over every probe.
template <typename SearchFn>
void Measure(const Gallery& g, const Probes& p, const Truth& truth, SearchFn search, Row* row) {
  std::vector<double> ms, cpu_ms;
  int hit_mated = 0, hit_non_mated = 0, same_decision = 0;
  const double cpu0 = CpuSeconds();
  for (int q = 0; q < p.size(); ++q) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    const auto [found, distance] = search(&p.vectors[q * kEmbeddingDim]);
    cpu_ms.push_back((CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3);
    ms.push_back(Seconds(t0) * 1e3);
    const bool hit = found >= 0 && g.SubjectOf(found) == g.SubjectOf(truth.row[q]);
    (q < p.mated ? hit_mated : hit_non_mated) += hit ? 1 : 0;
    same_decision += (distance <= kThreshold) == (truth.distance[q] <= kThreshold) ? 1 : 0;
    if (found >= 0) {
      const float exact =
          ExactDistance(&p.vectors[q * kEmbeddingDim], &g.vectors[found * kEmbeddingDim]);
      row->max_distance_error =
          std::max(row->max_distance_error, double{std::fabs(exact - distance)});
    }
  }
  double thread_cpu_ms = 0;
  for (double c : cpu_ms) thread_cpu_ms += c;
  // The whole process's CPU over the searching thread's: 1.0 when no other thread worked.
  row->process_per_thread_cpu = (CpuSeconds() - cpu0) * 1e3 / std::max(thread_cpu_ms, 1e-9);
  row->p50_ms = Percentile(ms, 0.50);
  row->p99_ms = Percentile(ms, 0.99);
  row->max_ms = *std::max_element(ms.begin(), ms.end());
  row->cpu_p50_ms = Percentile(cpu_ms, 0.50);
  row->cpu_p99_ms = Percentile(cpu_ms, 0.99);
  row->recall_mated = p.mated ? double(hit_mated) / p.mated : 1;
  const int non_mated = p.size() - p.mated;
  row->recall_non_mated = non_mated ? double(hit_non_mated) / non_mated : 1;
  row->decision_agreement = double(same_decision) / p.size();
}

Row MeasureFaceIndex(const Gallery& g, const Probes& p, const Truth& truth,
                     const FaceIndexOptions& options, const std::string& layout) {
  Row row;
  row.layout = layout;
  row.size = g.size();
  const double rss0 = StatusMiB("VmRSS");
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  // Streamed from the synthetic gallery as a store would stream its rows (ids = row + 1).
  auto index = FaceIndex::Build(
      [&g](const EmbeddingVisitor& each) {
        StoredEmbedding e;
        e.model_version = "bench";
        for (int64_t r = 0; r < g.size(); ++r) {
          e.id = r + 1;
          e.subject_id = g.SubjectOf(r) + 1;
          e.subject = "s" + std::to_string(e.subject_id);
          std::memcpy(e.embedding.data(), &g.vectors[r * kEmbeddingDim], sizeof(e.embedding));
          RETURN_IF_ERROR(each(e));
        }
        return absl::OkStatus();
      },
      "bench", options);
  row.build_s = Seconds(t0);
  row.build_cpu_s = CpuSeconds() - cpu0;  // all threads: what the build costs on a busy machine
  row.rss_mib = StatusMiB("VmRSS") - rss0;
  if (!index.ok()) {
    std::fprintf(stderr, "identify_bench: %s\n", std::string(index.status().message()).c_str());
    std::exit(1);
  }
  if ((*index)->approximate() != (layout == "ivf")) {
    std::fprintf(stderr, "identify_bench: expected the %s layout at %lld\n", layout.c_str(),
                 static_cast<long long>(g.size()));
    std::exit(1);
  }
  Embedding probe;
  Measure(
      g, p, truth,
      [&](const float* v) -> std::pair<int64_t, float> {
        std::memcpy(probe.data(), v, sizeof(probe));
        auto found = (*index)->Search(probe, 1);
        if (!found.ok() || found->empty()) return {-1, 0.f};
        return {found->front().embedding_id - 1, found->front().distance};
      },
      &row);
  return row;
}

Row MeasureHnsw(const Gallery& g, const Probes& p, const Truth& truth) {
  Row row;
  row.layout = "hnsw";
  row.size = g.size();
  const double rss0 = StatusMiB("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  faiss::IndexHNSWFlat hnsw(kEmbeddingDim, 32);
  hnsw.hnsw.efConstruction = 40;
  hnsw.add(g.size(), g.vectors.data());
  hnsw.hnsw.efSearch = 64;
  row.build_s = Seconds(t0);
  row.rss_mib = StatusMiB("VmRSS") - rss0;
  omp_set_num_threads(1);
  Measure(
      g, p, truth,
      [&](const float* v) -> std::pair<int64_t, float> {
        float d = 0;
        faiss::Index::idx_t id = -1;
        hnsw.search(1, v, 1, &d, &id);
        return {id, std::sqrt(std::max(0.f, d))};
      },
      &row);
  omp_set_num_threads(omp_get_num_procs());
  return row;
}

int Main(int argc, char** argv) {
  bool quick = false, json = false, hnsw = false;
  std::vector<int64_t> sizes;
  int queries = 2000;
  FaceIndexOptions options;
  for (int k = 1; k < argc; ++k) {
    const std::string a = argv[k];
    const bool has_value = k + 1 < argc;
    if (a == "--quick") {
      quick = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--hnsw") {
      hnsw = true;
    } else if (a == "--sizes" && has_value) {
      for (absl::string_view s : absl::StrSplit(argv[++k], ',')) {
        sizes.push_back(std::atoll(std::string(s).c_str()));
      }
    } else if (a == "--queries" && has_value) {
      queries = std::atoi(argv[++k]);
    } else if (a == "--nprobe" && has_value) {
      options.nprobe = std::atoi(argv[++k]);
    } else if (a == "--approximate-from" && has_value) {
      options.approximate_from = std::atoll(argv[++k]);
    } else {
      std::fprintf(stderr,
                   "usage: identify_bench [--quick] [--json] [--sizes N,N,..] [--queries N] "
                   "[--nprobe N] [--approximate-from N] [--hnsw]\n");
      return 2;
    }
  }
  if (sizes.empty()) {
    sizes = quick ? std::vector<int64_t>{10'000, 100'000}
                  : std::vector<int64_t>{10'000, 100'000, 1'000'000};
  }
  if (quick) {
    sizes.erase(std::remove_if(sizes.begin(), sizes.end(), [](int64_t n) { return n > 100'000; }),
                sizes.end());
  }
  if (sizes.empty() || queries < 1 || options.nprobe < 1) {
    std::fprintf(stderr, "identify_bench: sizes, --queries and --nprobe must be >= 1\n");
    return 2;
  }
  FILE* text = json ? stderr : stdout;
  std::vector<Row> rows;
  for (int64_t n : sizes) {
    Faces faces(n);
    Gallery g = MakeGallery(n, faces);
    const int mated = std::max(1, queries * 4 / 5);
    Probes p = MakeProbes(g, mated, queries - mated, faces);
    const Truth truth = BruteForce(g, p);
    double genuine = 0, impostor = 0;
    for (int q = 0; q < p.size(); ++q) (q < p.mated ? genuine : impostor) += truth.distance[q];
    std::fprintf(text,
                 "%lld embeddings (%zu subjects): mean nearest distance %.3f for mated probes, "
                 "%.3f for non-mated\n",
                 static_cast<long long>(n), g.centres.size(), genuine / p.mated,
                 p.size() > p.mated ? impostor / (p.size() - p.mated) : 0.0);
    if (n >= options.approximate_from) {
      rows.push_back(MeasureFaceIndex(g, p, truth, options, "ivf"));
    }
    if (n <= 100'000 || n < options.approximate_from) {
      FaceIndexOptions flat = options;
      flat.approximate_from = int64_t{1} << 62;
      rows.push_back(MeasureFaceIndex(g, p, truth, flat, "flat"));
    }
    if (hnsw && n <= 100'000) rows.push_back(MeasureHnsw(g, p, truth));
    for (size_t r = rows.size(); r-- > 0 && rows[r].size == n;) {
      const Row& x = rows[r];
      std::fprintf(
          text,
          "  %-4s build %.2f s (%.2f s CPU), +%.0f MiB RSS; search p50 %.3f ms, p99 %.3f ms, max "
          "%.3f ms (thread CPU p50 %.3f, p99 %.3f ms), process/thread CPU %.2f; recall@1 "
          "%.4f mated, %.4f non-mated; same match "
          "decision %.4f; distance error %.1e\n",
          x.layout.c_str(), x.build_s, x.build_cpu_s, x.rss_mib, x.p50_ms, x.p99_ms, x.max_ms,
          x.cpu_p50_ms, x.cpu_p99_ms, x.process_per_thread_cpu, x.recall_mated, x.recall_non_mated,
          x.decision_agreement, x.max_distance_error);
    }
  }
  std::fprintf(text, "peak RSS %.0f MiB, nprobe %d, approximate from %lld\n", StatusMiB("VmHWM"),
               options.nprobe, static_cast<long long>(options.approximate_from));
  if (json) {
    std::printf(
        "{\"bench\": \"identify\", \"nprobe\": %d, \"approximate_from\": %lld, "
        "\"queries\": %d, \"peak_rss_mib\": %.0f, \"rows\": [",
        options.nprobe, static_cast<long long>(options.approximate_from), queries,
        StatusMiB("VmHWM"));
    for (size_t r = 0; r < rows.size(); ++r) {
      const Row& x = rows[r];
      std::printf(
          "%s\n  {\"layout\": \"%s\", \"embeddings\": %lld, \"build_s\": %.3f, \"build_cpu_s\": "
          "%.3f, "
          "\"rss_delta_mib\": %.1f, \"p50_ms\": %.4f, \"p99_ms\": %.4f, \"max_ms\": %.4f, "
          "\"cpu_p50_ms\": %.4f, \"cpu_p99_ms\": %.4f, \"process_per_thread_cpu\": %.3f, "
          "\"recall_at_1_mated\": %.4f, "
          "\"recall_at_1_non_mated\": %.4f, \"decision_agreement\": %.4f, "
          "\"max_distance_error\": %.2e}",
          r ? "," : "", x.layout.c_str(), static_cast<long long>(x.size), x.build_s, x.build_cpu_s,
          x.rss_mib, x.p50_ms, x.p99_ms, x.max_ms, x.cpu_p50_ms, x.cpu_p99_ms,
          x.process_per_thread_cpu, x.recall_mated, x.recall_non_mated, x.decision_agreement,
          x.max_distance_error);
    }
    std::printf("\n]}\n");
  }
  return 0;
}

}  // namespace
}  // namespace fedface::partner

int main(int argc, char** argv) { return fedface::partner::Main(argc, argv); }
