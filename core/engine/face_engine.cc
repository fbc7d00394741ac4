#include "core/engine/face_engine.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/blas_info.h"
#include "core/common/status_macros.h"

namespace fedface {

struct FaceEngine::Worker {
  std::unique_ptr<FaceDetector> detector;
  std::unique_ptr<FaceResNet> net;  // null for a detection-only engine
};

// Workers are borrowed and returned, so concurrent callers never share a detector or network.
class FaceEngine::WorkerPool {
 public:
  void Add(std::unique_ptr<Worker> w) { free_.push_back(w.get()), all_.push_back(std::move(w)); }
  int size() const { return static_cast<int>(all_.size()); }

  Worker* Borrow() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    Worker* w = free_.back();
    free_.pop_back();
    return w;
  }
  void Return(Worker* w) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(w);
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Worker*> free_;
  std::vector<std::unique_ptr<Worker>> all_;
};

namespace {

// Borrows a worker for a scope.
template <typename Pool, typename W>
class Borrowed {
 public:
  explicit Borrowed(Pool& pool) : pool_(pool), worker_(pool.Borrow()) {}
  ~Borrowed() { pool_.Return(worker_); }
  W& operator*() { return *worker_; }

 private:
  Pool& pool_;
  W* worker_;
};

}  // namespace

FaceEngine::FaceEngine(const EngineOptions& options)
    : options_(options), pool_(std::make_unique<WorkerPool>()) {}
FaceEngine::~FaceEngine() = default;

absl::StatusOr<std::unique_ptr<FaceEngine>> FaceEngine::Create(const EngineOptions& options,
                                                               std::unique_ptr<FaceResNet> net) {
  std::unique_ptr<FaceEngine> engine(new FaceEngine(options));
  ASSIGN_OR_RETURN(std::unique_ptr<FaceAligner> aligner, FaceAligner::Load(options.landmark_model));
  engine->aligner_ = std::move(aligner);
  int n = options.workers > 0 ? options.workers
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  // One BLAS thread per network: the pool supplies the parallelism.
  SetBlasThreads(1);
  for (int i = 0; i < n; ++i) {
    auto worker = std::make_unique<Worker>();
    ASSIGN_OR_RETURN(std::unique_ptr<FaceDetector> detector, MakeHogFaceDetector(options.detector));
    worker->detector = std::move(detector);
    if (net) worker->net = (i + 1 == n) ? std::move(net) : net->Clone();
    engine->pool_->Add(std::move(worker));
  }
  return engine;
}

int FaceEngine::workers() const { return pool_->size(); }

ImageAnalysis FaceEngine::Analyze(Worker& worker, const absl::StatusOr<cv::Mat>& image,
                                  const ProcessOptions& options, const std::string& source) {
  ImageAnalysis out;
  out.source = source;
  if (!image.ok()) {
    out.status = image.status();
    return out;
  }
  out.width = image->cols;
  out.height = image->rows;
  std::vector<FaceBox> boxes = worker.detector->Detect(*image);
  if (options.largest_face_only && boxes.size() > 1) {
    auto largest = std::max_element(boxes.begin(), boxes.end(), [](const auto& a, const auto& b) {
      return a.Area() < b.Area();
    });
    boxes = {*largest};
  }
  std::vector<cv::Mat> chips;
  for (const FaceBox& box : boxes) {
    AnalyzedFace face;
    face.box = box;
    face.landmarks = aligner_->FindLandmarks(*image, box);
    if (options.embed || options.keep_chips) {
      cv::Mat chip = aligner_->ExtractChip(*image, face.landmarks);
      if (options.keep_chips) face.chip = chip;
      chips.push_back(std::move(chip));
    }
    out.faces.push_back(std::move(face));
  }
  if (options.embed && !chips.empty()) {
    if (!worker.net) {
      out.status = absl::FailedPreconditionError("engine has no embedding network");
      return out;
    }
    out.embeddings = worker.net->Embed(chips);
    // A crafted model can answer with inf/NaN for chosen faces only: such an image is a failure
    // of that image (a failure to enrol, counted like any other), never an error of the run.
    for (const Embedding& e : out.embeddings) {
      if (!IsUsableEmbedding(e)) {
        out.embeddings.clear();
        out.status = absl::InvalidArgumentError(
            "the model gave a non-finite or out-of-range embedding for a face in this image");
        break;
      }
    }
  }
  return out;
}

void FaceEngine::ProcessFiles(const std::vector<std::string>& paths, const ProcessOptions& options,
                              const std::function<void(size_t, ImageAnalysis&&)>& on_result) {
  std::atomic<size_t> next{0};
  auto run = [&] {
    Borrowed<WorkerPool, Worker> worker(*pool_);
    for (size_t i = next++; i < paths.size(); i = next++) {
      on_result(i, Analyze(*worker, DecodeImageFile(paths[i], options_.decode), options, paths[i]));
    }
  };
  const int threads = std::min<int>(pool_->size(), static_cast<int>(paths.size()));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(run);
  if (threads > 0) run();
  for (auto& t : pool) t.join();
}

std::vector<ImageAnalysis> FaceEngine::ProcessFiles(const std::vector<std::string>& paths,
                                                    const ProcessOptions& options) {
  std::vector<ImageAnalysis> results(paths.size());
  ProcessFiles(paths, options, [&](size_t i, ImageAnalysis&& a) { results[i] = std::move(a); });
  return results;
}

ImageAnalysis FaceEngine::ProcessBytes(std::string_view bytes, const ProcessOptions& options,
                                       const std::string& source) {
  absl::StatusOr<cv::Mat> image = DecodeImage(bytes, options_.decode);
  Borrowed<WorkerPool, Worker> worker(*pool_);
  return Analyze(*worker, image, options, source);
}

absl::StatusOr<std::vector<Embedding>> FaceEngine::EmbedChips(const std::vector<cv::Mat>& chips) {
  for (const cv::Mat& c : chips) {
    if (c.rows != kChipSize || c.cols != kChipSize || c.type() != CV_8UC3) {
      return absl::InvalidArgumentError("chips must be 150x150 8-bit RGB");
    }
  }
  std::vector<Embedding> out(chips.size());
  constexpr size_t kBatch = 16;
  std::atomic<size_t> next{0};
  std::atomic<bool> missing_net{false};
  auto run = [&] {
    Borrowed<WorkerPool, Worker> worker(*pool_);
    if (!(*worker).net) {
      missing_net = true;
      return;
    }
    for (size_t start = next.fetch_add(kBatch); start < chips.size();
         start = next.fetch_add(kBatch)) {
      const size_t end = std::min(chips.size(), start + kBatch);
      std::vector<cv::Mat> batch(chips.begin() + start, chips.begin() + end);
      std::vector<Embedding> e = (*worker).net->Embed(batch);
      std::copy(e.begin(), e.end(), out.begin() + start);
    }
  };
  const int threads =
      std::min<int>(pool_->size(), static_cast<int>((chips.size() + kBatch - 1) / kBatch));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(run);
  if (threads > 0) run();
  for (auto& t : pool) t.join();
  if (missing_net) return absl::FailedPreconditionError("engine has no embedding network");
  return out;
}

}  // namespace fedface
