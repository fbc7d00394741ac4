// The partner-side face pipeline: decode -> detect -> 68 landmarks -> aligned chip -> 128-d
// embedding, run across a pool of workers (one detector and one network per worker, one BLAS
// thread each: dlib's DNN is single-threaded, so parallelism comes from the pool).
#pragma once

#include <functional>
#include <memory>
#include <opencv2/core/mat.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/embedding.h"
#include "core/engine/embedding_backend.h"
#include "core/engine/face_aligner.h"
#include "core/engine/face_detector.h"
#include "core/engine/face_resnet.h"
#include "core/engine/image_decoder.h"

namespace fedface {

struct EngineOptions {
  // The fast default; DetectorOptions{} is face_recognition's exact detector (--exact-parity).
  DetectorOptions detector = FastDetectorOptions();
  DecodeLimits decode;
  int workers = 0;  // 0: one per hardware thread
  std::string landmark_model = DefaultLandmarkModelPath();
  // How the loaders (LoadVerifiedModel's callers) make the network; FaceEngine itself takes the
  // network made.
  EmbeddingBackend backend = kDefaultEmbeddingBackend;
};

struct AnalyzedFace {
  FaceBox box;
  Landmarks landmarks;
  cv::Mat chip;  // kept only when ProcessOptions::keep_chips
};

struct ProcessOptions {
  bool largest_face_only = false;  // keep only the face with the largest box
  bool embed = true;               // compute embeddings (needs a network)
  bool keep_chips = false;         // keep the 150x150 chips in the result
};

// What the pipeline made of one image. `status` is not OK when the image could not be decoded or
// when the model gave an embedding that is not usable (IsUsableEmbedding: non-finite or out of
// range; then `embeddings` is empty); an image without faces is OK with no faces (the caller
// decides whether that is a failure to enrol). embeddings[i] belongs to faces[i].
struct ImageAnalysis {
  std::string source;
  absl::Status status;
  int width = 0, height = 0;
  std::vector<AnalyzedFace> faces;
  std::vector<Embedding> embeddings;
};

class FaceEngine {
 public:
  // `net` may be null for a detection-only engine; ProcessOptions::embed then fails per image.
  // Fails when the landmark model cannot be loaded or the options are invalid.
  static absl::StatusOr<std::unique_ptr<FaceEngine>> Create(const EngineOptions& options,
                                                            std::unique_ptr<FaceResNet> net);
  ~FaceEngine();
  FaceEngine(const FaceEngine&) = delete;
  FaceEngine& operator=(const FaceEngine&) = delete;

  int workers() const;

  // Runs the pipeline over the files on all workers. `on_result(index, analysis)` is called once
  // per file, from worker threads (the callee synchronises), in completion order.
  void ProcessFiles(const std::vector<std::string>& paths, const ProcessOptions& options,
                    const std::function<void(size_t, ImageAnalysis&&)>& on_result);

  // Collecting form of ProcessFiles: results in input order.
  std::vector<ImageAnalysis> ProcessFiles(const std::vector<std::string>& paths,
                                          const ProcessOptions& options);

  // One image held in memory (e.g. from the local match API). Thread-safe: borrows a worker.
  ImageAnalysis ProcessBytes(std::string_view bytes, const ProcessOptions& options,
                             const std::string& source = "<bytes>");

  // Embeds chips (150x150 RGB) spread over the workers. Thread-safe. Fails without a network.
  absl::StatusOr<std::vector<Embedding>> EmbedChips(const std::vector<cv::Mat>& chips);

 private:
  struct Worker;
  class WorkerPool;
  explicit FaceEngine(const EngineOptions& options);
  ImageAnalysis Analyze(Worker& worker, const absl::StatusOr<cv::Mat>& image,
                        const ProcessOptions& options, const std::string& source);

  EngineOptions options_;
  std::unique_ptr<FaceAligner> aligner_;
  std::unique_ptr<WorkerPool> pool_;
};

}  // namespace fedface
