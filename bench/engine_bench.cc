// Engine throughput, printed as figures (no wall-clock assertions anywhere):
//   - HOG detection ms per image on the npm sample photos at upsample 0 and 1 (colour, grayscale,
//     and grayscale on a copy downscaled to 960 px);
//   - embedding faces/s per backend (dlib on OpenBLAS, onednn, onednn-int8 calibrated on the
//     sample photos' faces) with 1 and 2 workers, and faces per CPU-second
//     (BenchEmbeddingBackends; with --json, one JSON object {"embedding_faces_per_s": ...});
//   - the same 1-worker embedding on Debian's reference BLAS, run in a child process in this same
//     run, reported as a ratio;
//   - loading the weights (FaceResNet::FromSerialized), ms per load: the pre-walk over the bytes
//     alone, the load up to the first architecture check, and the whole load;
//   - the photo pipeline (decode, detect, landmarks, chips, embeddings) on 1920x1080 copies of the
//     sample photos: photos/s of the fast default and of the face_recognition-parity path, and
//     the default detector's ms per photo.
// usage: engine_bench [--faceapi DIR] [--chips N] [--repeat N] [--json | --backend NAME | --stages]
//   --backend NAME: only that backend's embedding figures (1 and 2 workers), as JSON.
//   --json: one JSON object (embedding_faces_per_s per backend and workers, pipeline_photos_per_s,
//   detection_ms_per_photo, ...) on stdout for bench/peers.sh, which measures face-api.js on the
//   same photos (photos_dir) in the same run.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "bench/pipeline_stages.h"
#include "core/common/blas_info.h"
#include "core/common/cli_args.h"
#include "core/common/status_macros.h"
#include "core/engine/embedding_backend.h"
#include "core/engine/face_engine.h"
#include "core/engine/face_resnet_onednn.h"
#include "core/engine/image_decoder.h"
#include "core/engine/weights_prewalk.h"
#include "core/package/tfjs_weights.h"

namespace fedface {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<cv::Mat> SampleChips(const std::string& faceapi, size_t count);

// onednn-int8's activation scales as the vendor's packaging computes them by default: from every
// face of the npm sample photos.
absl::StatusOr<Int8Calibration> SampleCalibration(const std::string& faceapi,
                                                  const std::string& weights) {
  ASSIGN_OR_RETURN(FaceResNetParameters params, FaceResNet::CheckedParameters(weights));
  std::vector<cv::Mat> chips = SampleChips(faceapi, 0);
  return ComputeInt8Calibration(params, chips);
}

std::unique_ptr<FaceResNet> LoadNet(const std::string& faceapi,
                                    EmbeddingBackend backend = EmbeddingBackend::kDlib) {
  auto tfjs = ReadTfjsRecognitionWeights(faceapi);
  auto bytes = tfjs.ok() ? FaceResNet::SerializeFromTfjs(tfjs->tensors)
                         : absl::StatusOr<std::string>(tfjs.status());
  absl::StatusOr<Int8Calibration> calibration = Int8Calibration{};
  if (bytes.ok() && backend == EmbeddingBackend::kOneDnnInt8) {
    calibration = SampleCalibration(faceapi, *bytes);
  }
  auto net = !bytes.ok()         ? absl::StatusOr<std::unique_ptr<FaceResNet>>(bytes.status())
             : !calibration.ok() ? absl::StatusOr<std::unique_ptr<FaceResNet>>(calibration.status())
                                 : MakeEmbeddingNetwork(*bytes, backend, &*calibration);
  if (!net.ok()) {
    std::cerr << "engine_bench: " << net.status().message() << "\n";
    std::exit(1);
  }
  return std::move(*net);
}

// ms per load of the face-api weights (median of `repeat`): PrewalkFaceResNetWeights alone; a full
// FaceResNet::FromSerialized; and one of the same network with the fc layer's first weight NaN,
// which the architecture check refuses at the first layer it compares (so: pre-walk + dlib's
// deserialize + reading the layers back), leaving the rest to the checks and the rebuild.
void BenchWeightsLoad(const std::string& faceapi, int repeat) {
  auto tfjs = ReadTfjsRecognitionWeights(faceapi);
  auto bytes = tfjs.ok() ? FaceResNet::SerializeFromTfjs(tfjs->tensors)
                         : absl::StatusOr<std::string>(tfjs.status());
  absl::StatusOr<std::string> nan_fc = bytes;
  if (bytes.ok()) {
    for (NamedTensor& t : tfjs->tensors) {
      if (t.name == "fc") t.values[0] = std::numeric_limits<float>::quiet_NaN();
    }
    nan_fc = FaceResNet::SerializeFromTfjs(tfjs->tensors);
  }
  if (!nan_fc.ok()) {
    std::cerr << "engine_bench: " << nan_fc.status().message() << "\n";
    return;
  }
  (void)FaceResNet::FromSerialized(*bytes);  // the reference network is built once per process
  auto median_ms = [repeat](const auto& load) {
    std::vector<double> runs;
    for (int r = 0; r < std::max(repeat, 3); ++r) {
      const auto start = Clock::now();
      load();
      runs.push_back(Seconds(start) * 1000);
    }
    std::sort(runs.begin(), runs.end());
    return runs[runs.size() / 2];
  };
  const double prewalk = median_ms([&] { (void)PrewalkFaceResNetWeights(*bytes); });
  const double to_first_check = median_ms([&] { (void)FaceResNet::FromSerialized(*nan_fc); });
  const double full = median_ms([&] { (void)FaceResNet::FromSerialized(*bytes); });
  std::cout << std::fixed << std::setprecision(2) << "weights load (" << bytes->size()
            << " bytes): " << full << " ms, of which the pre-walk " << prewalk
            << " ms, the pre-walk + dlib's deserialize " << to_first_check
            << " ms, the architecture check and rebuild " << full - to_first_check << " ms\n";
}

// Faces per second embedding `chips` on an engine with `workers` workers (best of `repeat`).
// The process's CPU time in seconds (all threads).
double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// Also, when `per_cpu_second` is given, the faces per CPU-second of the process (best run): what
// the backend gets from a core it has to itself, however loaded the machine is.
double EmbedRate(const std::string& faceapi, const std::vector<cv::Mat>& chips, int workers,
                 int repeat, EmbeddingBackend backend = EmbeddingBackend::kDlib,
                 double* per_cpu_second = nullptr) {
  EngineOptions options;
  options.workers = workers;
  auto engine = FaceEngine::Create(options, LoadNet(faceapi, backend));
  (void)(*engine)->EmbedChips(chips);  // warm-up: every worker compiles its batch shapes
  double best = 0, best_cpu = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds();
    (void)(*engine)->EmbedChips(chips);
    best = std::max(best, chips.size() / Seconds(start));
    best_cpu = std::max(best_cpu, chips.size() / (CpuSeconds() - cpu_start));
  }
  if (per_cpu_second != nullptr) *per_cpu_second = best_cpu;
  return best;
}

std::vector<cv::Mat> SampleChips(const std::string& faceapi, size_t count) {
  EngineOptions options;
  options.detector.upsample = 1;
  auto engine = FaceEngine::Create(options, nullptr);
  std::vector<std::string> photos;
  for (int i = 1; i <= 6; ++i)
    photos.push_back(faceapi + "/demo/sample" + std::to_string(i) + ".jpg");
  ProcessOptions process;
  process.embed = false;
  process.keep_chips = true;
  std::vector<cv::Mat> chips;
  for (const ImageAnalysis& a : (*engine)->ProcessFiles(photos, process)) {
    for (const AnalyzedFace& f : a.faces) chips.push_back(f.chip);
  }
  if (chips.empty()) {
    std::cerr << "engine_bench: no faces in the sample photos\n";
    std::exit(1);
  }
  if (count == 0) return chips;  // each face once
  std::vector<cv::Mat> out;
  for (size_t i = 0; i < count; ++i) out.push_back(chips[i % chips.size()]);
  return out;
}

// Embedding faces/s per backend with 1 and 2 workers, all from this one run. Prints a table and
// returns the JSON value of "embedding_faces_per_s": {"dlib": {"1": x, "2": y}, "onednn": ...}.
// *per_cpu_s (if given) receives the same shape with faces per CPU-second of the process.
std::string BenchEmbeddingBackends(const std::string& faceapi, const std::vector<cv::Mat>& chips,
                                   int repeat, std::string* per_cpu_s = nullptr,
                                   const std::vector<EmbeddingBackend>& backends = {
                                       EmbeddingBackend::kDlib, EmbeddingBackend::kOneDnn,
                                       EmbeddingBackend::kOneDnnInt8}) {
  std::ostringstream json, cpu_json;
  json << std::fixed << std::setprecision(1) << "{";
  cpu_json << std::fixed << std::setprecision(1) << "{";
  std::cout << "embedding " << chips.size() << " chips, faces/s (best of " << repeat << "):\n";
  double dlib_two = 0;
  const char* separator = "";
  for (EmbeddingBackend backend : backends) {
    double per_cpu_second = 0, per_cpu_second_two = 0;
    const double one = EmbedRate(faceapi, chips, 1, repeat, backend, &per_cpu_second);
    const double two = EmbedRate(faceapi, chips, 2, repeat, backend, &per_cpu_second_two);
    if (backend == EmbeddingBackend::kDlib) dlib_two = two;
    const std::string name(EmbeddingBackendName(backend));
    std::cout << std::fixed << std::setprecision(1) << "  " << std::setw(8) << name << "  1 worker "
              << std::setw(7) << one << " (" << 1000 / one << " ms/face)  2 workers "
              << std::setw(7) << two << " (" << two / one << "x)";
    if (backend != EmbeddingBackend::kDlib && dlib_two > 0) {
      std::cout << "  " << two / dlib_two << "x dlib";
    }
    std::cout << "  [faces per CPU-second: 1 worker " << per_cpu_second << ", 2 workers "
              << per_cpu_second_two << "]\n";
    json << separator << "\"" << name << "\": {\"1\": " << one << ", \"2\": " << two << "}";
    cpu_json << separator << "\"" << name << "\": {\"1\": " << per_cpu_second
             << ", \"2\": " << per_cpu_second_two << "}";
    separator = ", ";
  }
  json << "}";
  cpu_json << "}";
  if (per_cpu_s != nullptr) *per_cpu_s = cpu_json.str();
  return json.str();
}

void BenchDetection(const std::string& faceapi, int repeat) {
  std::vector<cv::Mat> photos;
  for (int i = 1; i <= 6; ++i) {
    photos.push_back(*DecodeImageFile(faceapi + "/demo/sample" + std::to_string(i) + ".jpg"));
  }
  std::cout << "HOG detection, 6 sample photos (~1920x1400), ms per image (median of " << repeat
            << " runs), faces found:\n";
  struct Variant {
    const char* name;
    bool gray;
    int max_side;
  };
  for (int upsample : {0, 1}) {
    for (const Variant v : {Variant{"colour", false, 0}, Variant{"gray", true, 0},
                            Variant{"gray@960px", true, 960}}) {
      DetectorOptions options{upsample, v.gray, v.max_side};
      auto detector = MakeHogFaceDetector(options);
      std::vector<double> runs;
      size_t faces = 0;
      for (int r = 0; r < repeat; ++r) {
        faces = 0;
        const auto start = Clock::now();
        for (const cv::Mat& p : photos) faces += (*detector)->Detect(p).size();
        runs.push_back(Seconds(start) * 1000 / photos.size());
      }
      std::sort(runs.begin(), runs.end());
      std::cout << "  upsample " << upsample << "  " << std::setw(11) << v.name << "  "
                << std::fixed << std::setprecision(1) << std::setw(7) << runs[runs.size() / 2]
                << " ms  " << faces << " faces\n";
    }
  }
}

// ---- Photo pipeline figures (issue 13 items 2 and 4; branch s4/pipeline) ----

// 1920x1080 copies of the six sample photos (scaled to cover, centre-cropped), written once as
// JPEG beside the face-api cache, with the same pixels as raw RGB (.rgb) for face-api.js, which
// has no JPEG decoder under Node: its figures then exclude decoding, ours include it.
std::vector<std::string> Bench1080pPhotos(const std::string& faceapi, std::string* dir_out) {
  const std::filesystem::path dir =
      std::filesystem::path(faceapi).parent_path() / "bench-photos-1920x1080";
  std::filesystem::create_directories(dir);
  std::vector<std::string> paths;
  for (int i = 1; i <= 6; ++i) {
    const std::string stem = (dir / ("sample" + std::to_string(i))).string();
    if (!std::filesystem::exists(stem + ".jpg") || !std::filesystem::exists(stem + ".rgb")) {
      absl::StatusOr<cv::Mat> rgb =
          DecodeImageFile(faceapi + "/demo/sample" + std::to_string(i) + ".jpg");
      if (!rgb.ok()) {
        std::cerr << "engine_bench: " << rgb.status().message() << "\n";
        std::exit(1);
      }
      const double s = std::max(1920.0 / rgb->cols, 1080.0 / rgb->rows);
      cv::Mat scaled;
      cv::resize(*rgb, scaled, cv::Size(), s, s, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
      cv::Mat crop =
          scaled(cv::Rect((scaled.cols - 1920) / 2, (scaled.rows - 1080) / 2, 1920, 1080)).clone();
      cv::Mat bgr;
      cv::cvtColor(crop, bgr, cv::COLOR_RGB2BGR);
      cv::imwrite(stem + ".jpg", bgr, {cv::IMWRITE_JPEG_QUALITY, 92});
      absl::StatusOr<cv::Mat> back = DecodeImageFile(stem + ".jpg");  // what both sides see
      FILE* raw = std::fopen((stem + ".rgb").c_str(), "wb");
      if (raw) std::fwrite(back->data, 1, back->total() * back->elemSize(), raw), std::fclose(raw);
    }
    paths.push_back(stem + ".jpg");
  }
  *dir_out = dir.string();
  return paths;
}

// CPU seconds of this thread / of the whole process: on a loaded machine wall-clock rates say how
// busy the neighbours were, CPU time what the work costs.
double CpuSeconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

struct PipelineRun {
  double photos_per_s = 0;
  double faces_per_photo = 0;
  double cpu_ms_per_photo = 0;  // process CPU time per photo, all workers together
};

// The whole pipeline over `rounds` passes of the photos, every face embedded (as face-api's
// detectAllFaces().withFaceLandmarks().withFaceDescriptors()); best of `repeat`.
PipelineRun RunPipeline(const std::string& faceapi, const std::vector<std::string>& photos,
                        const DetectorOptions& detector, int workers, int rounds, int repeat) {
  EngineOptions options;
  options.detector = detector;
  options.workers = workers;
  // The product's choice: the default backend, dlib with the exact-parity detector.
  if (detector.min_face_px == 0) options.backend = EmbeddingBackend::kDlib;
  auto engine = FaceEngine::Create(options, LoadNet(faceapi, options.backend));
  if (!engine.ok()) {
    std::cerr << "engine_bench: " << engine.status().message() << "\n";
    std::exit(1);
  }
  std::vector<std::string> list;
  for (int r = 0; r < rounds; ++r) list.insert(list.end(), photos.begin(), photos.end());
  (void)(*engine)->ProcessFiles({photos[0]}, ProcessOptions{});  // warm-up
  PipelineRun best;
  for (int r = 0; r < repeat; ++r) {
    size_t faces = 0;
    const auto start = Clock::now();
    const double cpu_start = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
    for (const ImageAnalysis& a : (*engine)->ProcessFiles(list, ProcessOptions{})) {
      faces += a.embeddings.size();
    }
    const double rate = list.size() / Seconds(start);
    const double cpu_ms = (CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start) * 1000 / list.size();
    if (rate > best.photos_per_s) best = {rate, double(faces) / list.size(), cpu_ms};
  }
  return best;
}

// Median CPU ms per photo of one detector on decoded photos (one thread).
double DetectionMs(const std::vector<std::string>& photos, const DetectorOptions& options,
                   int repeat) {
  std::vector<cv::Mat> decoded;
  for (const std::string& p : photos) decoded.push_back(*DecodeImageFile(p));
  auto detector = MakeHogFaceDetector(options);
  std::vector<double> runs;
  for (int r = 0; r < repeat; ++r) {
    const double start = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    for (const cv::Mat& m : decoded) (void)(*detector)->Detect(m);
    runs.push_back((CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - start) * 1000 / decoded.size());
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

// Adds the pipeline figures to `out`.
void AddPipelineFigures(const std::string& faceapi, int repeat, nlohmann::json& out) {
  std::string dir;
  const std::vector<std::string> photos = Bench1080pPhotos(faceapi, &dir);
  const DetectorOptions fast = FastDetectorOptions();
  const DetectorOptions exact;  // face_recognition's: colour HOG, upsample 1
  const PipelineRun two = RunPipeline(faceapi, photos, fast, 2, 8, repeat);
  const PipelineRun one = RunPipeline(faceapi, photos, fast, 1, 4, repeat);
  const PipelineRun parity = RunPipeline(faceapi, photos, exact, 2, 1, 1);
  out["photos_dir"] = dir;
  out["photos"] = "6 sample photos of @vladmandic/face-api 1.7.15 at 1920x1080 (JPEG q92)";
  out["min_face_px"] = fast.min_face_px;
  out["pipeline_backend"] = EmbeddingBackendName(EngineOptions{}.backend);
  // Wall-clock rates (what this run saw) and CPU-time figures (what the work costs; with two
  // workers and nothing else running, 2000 / cpu_ms_per_photo photos/s).
  out["pipeline_photos_per_s"] = two.photos_per_s;
  out["pipeline_photos_per_s_1_worker"] = one.photos_per_s;
  out["pipeline_cpu_ms_per_photo"] = two.cpu_ms_per_photo;
  out["pipeline_photos_per_s_2_idle_cores"] = 2000 / two.cpu_ms_per_photo;
  out["pipeline_faces_per_photo"] = two.faces_per_photo;
  out["pipeline_exact_parity_photos_per_s"] = parity.photos_per_s;
  out["pipeline_exact_parity_cpu_ms_per_photo"] = parity.cpu_ms_per_photo;
  out["pipeline_exact_parity_faces_per_photo"] = parity.faces_per_photo;
  out["detection_ms_per_photo"] = DetectionMs(photos, fast, repeat);  // CPU ms, one thread
  out["detection_exact_parity_ms_per_photo"] = DetectionMs(photos, exact, 1);
  for (int min_face : {80, 100, 120, 160}) {
    DetectorOptions o = FastDetectorOptions();
    o.min_face_px = min_face;
    out["detection_ms_per_photo_by_min_face_px"][std::to_string(min_face)] =
        DetectionMs(photos, o, repeat);
  }
  std::vector<double> decode_runs;
  for (int r = 0; r < repeat; ++r) {
    const double start = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    for (const std::string& p : photos) (void)DecodeImageFile(p);
    decode_runs.push_back((CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - start) * 1000 / photos.size());
  }
  std::sort(decode_runs.begin(), decode_runs.end());
  out["decode_ms_per_photo"] = decode_runs[decode_runs.size() / 2];
  std::unique_ptr<FaceResNet> dlib = LoadNet(faceapi, EmbeddingBackend::kDlib);
  std::unique_ptr<FaceResNet> onednn = LoadNet(faceapi, EmbeddingBackend::kOneDnn);
  out["stage_cpu_ms_per_photo"] =
      PipelineStageCpuMs(photos, repeat, {{"dlib", dlib.get()}, {"onednn", onednn.get()}});
}

// ---- end of the photo pipeline figures ----

}  // namespace
}  // namespace fedface

int main(int argc, char** argv) {
  using namespace fedface;
  auto args = CliArgs::Parse({argv + 1, argv + argc}, {"faceapi", "chips", "repeat", "backend"},
                             {"embed-only", "json", "stages"});
  if (!args.ok()) {
    std::cerr << "engine_bench: " << args.status().message() << "\n";
    return 2;
  }
  std::string faceapi = args->GetOr("faceapi", "");
  if (faceapi.empty()) {
    const std::filesystem::path self = std::filesystem::canonical("/proc/self/exe");
    faceapi = (self.parent_path().parent_path().parent_path() / ".cache/face-api-1.7.15").string();
  }
  const int chips = static_cast<int>(args->GetInt("chips", 64, 2, 10000).value_or(64));
  const int repeat = static_cast<int>(args->GetInt("repeat", 3, 1, 100).value_or(3));
  const std::vector<cv::Mat> sample = SampleChips(faceapi, chips);

  if (args->Has("backend")) {  // only this backend's embedding figures, as JSON
    auto backend = ParseEmbeddingBackend(args->GetOr("backend", ""), "--backend");
    if (!backend.ok()) {
      std::cerr << "engine_bench: " << backend.status().message() << "\n";
      return 2;
    }
    std::streambuf* out = std::cout.rdbuf(std::cerr.rdbuf());
    std::string per_cpu_s;
    const std::string per_s =
        BenchEmbeddingBackends(faceapi, sample, repeat, &per_cpu_s, {*backend});
    std::cout.rdbuf(out);
    std::cout << nlohmann::json{{"embedding_faces_per_s", nlohmann::json::parse(per_s)},
                                {"embedding_faces_per_cpu_s", nlohmann::json::parse(per_cpu_s)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  if (args->Has("stages")) {  // only the stage-by-stage CPU profile of the photo pipeline
    std::string dir;
    const std::vector<std::string> photos = Bench1080pPhotos(faceapi, &dir);
    std::unique_ptr<FaceResNet> dlib = LoadNet(faceapi, EmbeddingBackend::kDlib);
    std::unique_ptr<FaceResNet> onednn = LoadNet(faceapi, EmbeddingBackend::kOneDnn);
    std::cout << PipelineStageCpuMs(photos, repeat,
                                    {{"dlib", dlib.get()}, {"onednn", onednn.get()}})
                     .dump(2)
              << "\n";
    return 0;
  }
  if (args->Has("embed-only")) {  // child mode: one figure on whatever BLAS was loaded
    std::cout << EmbedRate(faceapi, sample, 1, repeat) << "\n";
    return 0;
  }
  if (args->Has("json")) {  // one JSON object, each section adds its keys; tables on stderr
    nlohmann::json report = {{"workers_available", std::thread::hardware_concurrency()}};
    std::streambuf* out = std::cout.rdbuf(std::cerr.rdbuf());
    std::string per_cpu_s;
    report["embedding_faces_per_s"] =
        nlohmann::json::parse(BenchEmbeddingBackends(faceapi, sample, repeat, &per_cpu_s));
    report["embedding_faces_per_cpu_s"] = nlohmann::json::parse(per_cpu_s);
    std::cout.rdbuf(out);
    AddPipelineFigures(faceapi, repeat, report);
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  std::cout << "BLAS: " << LoadedBlasDescription() << "\n";
  BenchDetection(faceapi, repeat);
  BenchWeightsLoad(faceapi, repeat);
  BenchEmbeddingBackends(faceapi, sample, repeat);
  const double one = EmbedRate(faceapi, sample, 1, repeat);

  // The reference BLAS in a child process: LD_LIBRARY_PATH puts Debian's libblas.so.3 first.
  const std::string reference = "/usr/lib/x86_64-linux-gnu/blas";
  const int ref_chips = std::max(4, chips / 8);
  const std::string cmd = "LD_LIBRARY_PATH=" + reference + " /proc/" + std::to_string(getpid()) +
                          "/exe --embed-only --repeat 1 --chips " + std::to_string(ref_chips) +
                          " --faceapi '" + faceapi + "'";
  if (FILE* child = popen(cmd.c_str(), "r")) {
    double ref_rate = 0;
    if (fscanf(child, "%lf", &ref_rate) == 1 && ref_rate > 0) {
      std::cout << "  reference BLAS, 1 worker  " << ref_rate << " faces/s (" << 1000 / ref_rate
                << " ms/face): OpenBLAS is " << one / ref_rate << "x faster\n";
    } else {
      std::cout << "  reference BLAS: child run failed (is libblas3 installed?)\n";
    }
    pclose(child);
  }
  nlohmann::json pipeline;
  AddPipelineFigures(faceapi, repeat, pipeline);
  std::cout << "photo pipeline (decode, detect, landmarks, chips, embeddings of every face):\n"
            << pipeline.dump(2) << "\n";
  return 0;
}
