// model_vendor package: face-api's tfjs weights -> dlib face ResNet -> signed model package, with
// a self-test of reference chips embedded at packaging time.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "core/common/blas_info.h"
#include "core/common/cli_args.h"
#include "core/common/status_macros.h"
#include "core/engine/face_engine.h"
#include "core/engine/face_resnet_onednn.h"
#include "core/package/ed25519.h"
#include "core/package/package_writer.h"
#include "core/package/tfjs_weights.h"
#include "model_vendor/cli/command.h"

namespace fedface::vendor {
namespace {

constexpr char kUsage[] =
    R"(usage: model_vendor package --faceapi DIR --version V --key KEY --out PKG
                            [--model-id ID] [--threshold T] [--selftest-image FILE]...
                            [--calibration-image FILE]... [--no-int8-calibration]

Converts face-api's tfjs face recognition weights (DIR/model/face_recognition_model*; DIR is what
scripts/fetch_model.sh prints) into dlib's face ResNet and writes a signed package folder PKG:
weights.dat, manifest.json, manifest.sig, selftest/chipN.png. The manifest carries, signed, the
int8 calibration the partner's onednn-int8 backend needs: the activation scales measured by the
fp32 network on every face of the calibration photos.

  --faceapi DIR          face-api folder (model/ and demo/ inside)
  --version V            package version, semver (e.g. 1.0.0)
  --key KEY              vendor private key from `model_vendor keygen`
  --out PKG              package folder to create (must not exist)
  --model-id ID          model id (default dlib-face-resnet)
  --threshold T          default same-person distance threshold (default 0.6)
  --selftest-image FILE  photo whose largest face becomes a self-test chip (repeatable;
                         default DIR/demo/sample1.jpg, sample2.jpg, sample3.jpg)
  --calibration-image FILE  photo whose faces (all of them) calibrate the int8 backend
                         (repeatable; default DIR/demo/sample1.jpg ... sample6.jpg)
  --no-int8-calibration  leave the int8 calibration out (the package then loads on dlib and
                         onednn only)
)";

constexpr char kNpmPackage[] = "@vladmandic/face-api@1.7.15";

int Fail(const absl::Status& status) {
  std::cerr << "model_vendor package: " << status.message() << "\n";
  return 1;
}

// Every value of a repeatable flag (CliArgs keeps the last one only).
std::vector<std::string> RepeatedFlag(const std::vector<std::string>& raw_args,
                                      const std::string& name) {
  std::vector<std::string> values;
  const std::string flag = "--" + name, prefix = flag + "=";
  for (size_t i = 0; i < raw_args.size(); ++i) {
    if (raw_args[i] == flag && i + 1 < raw_args.size()) values.push_back(raw_args[i + 1]);
    if (raw_args[i].rfind(prefix, 0) == 0) values.push_back(raw_args[i].substr(prefix.size()));
  }
  return values;
}

// The int8 calibration from every face of `images`, with the self-test tolerance the int8
// network needs on `self_test` (twice its largest distance from the reference embeddings, at
// least 0.02): the partner's onednn-int8 self-test then checks it against those same chips.
absl::StatusOr<Int8Calibration> Calibrate(FaceEngine& engine, const std::string& weights,
                                          const std::vector<std::string>& images,
                                          const std::vector<SelfTestChip>& self_test) {
  ProcessOptions process;
  process.embed = false;
  process.keep_chips = true;
  std::vector<cv::Mat> chips;
  for (ImageAnalysis& a : engine.ProcessFiles(images, process)) {
    RETURN_IF_ERROR(a.status);
    for (AnalyzedFace& f : a.faces) chips.push_back(std::move(f.chip));
  }
  if (chips.empty()) {
    return absl::InvalidArgumentError("no face found in the calibration photos");
  }
  ASSIGN_OR_RETURN(FaceResNetParameters params, FaceResNet::CheckedParameters(weights));
  ASSIGN_OR_RETURN(Int8Calibration calibration, ComputeInt8Calibration(params, chips));
  calibration.self_test_tolerance = kMaxInt8SelfTestTolerance;
  absl::StatusOr<std::unique_ptr<FaceResNet>> made = MakeOneDnnInt8FaceResNet(params, calibration);
  if (absl::IsFailedPrecondition(made.status())) {
    return absl::FailedPreconditionError(
        "int8 calibration: this CPU has no VNNI, and the int8 self-test tolerance is measured on "
        "the int8 network: package on a CPU with VNNI, or pass --no-int8-calibration");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<FaceResNet> int8, std::move(made));
  std::vector<cv::Mat> self_test_chips;
  for (const SelfTestChip& c : self_test) self_test_chips.push_back(c.chip_rgb);
  const std::vector<Embedding> got = int8->Embed(self_test_chips);
  float worst = 0.f;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, EuclideanDistance(got[i], self_test[i].embedding));
  }
  const double tolerance = std::max(0.02, 2.0 * worst);
  if (!(tolerance <= kMaxInt8SelfTestTolerance)) {
    return absl::FailedPreconditionError(
        absl::StrCat("int8 calibration: the self-test chips embed at distance ", worst,
                     " from the reference on onednn-int8; the partner allows at most ",
                     kMaxInt8SelfTestTolerance / 2, " (try other --calibration-image photos)"));
  }
  calibration.self_test_tolerance = tolerance;
  std::cout << "model_vendor package: int8 calibration from " << chips.size()
            << " faces; self-test distance on onednn-int8 " << worst << " (tolerance " << tolerance
            << ")\n";
  return calibration;
}

}  // namespace

int RunPackage(const std::vector<std::string>& raw_args) {
  absl::StatusOr<CliArgs> args =
      CliArgs::Parse(raw_args,
                     {"faceapi", "version", "key", "out", "model-id", "threshold", "selftest-image",
                      "calibration-image"},
                     {"help", "no-int8-calibration"});
  if (!args.ok()) {
    std::cerr << "model_vendor package: " << args.status().message() << "\n" << kUsage;
    return 2;
  }
  if (args->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  for (const char* required : {"faceapi", "version", "key", "out"}) {
    if (!args->Has(required)) {
      std::cerr << "model_vendor package: --" << required << " is required\n" << kUsage;
      return 2;
    }
  }
  const std::string faceapi = *args->Get("faceapi");
  PackageFields fields;
  fields.version = *args->Get("version");
  fields.model_id = args->GetOr("model-id", fields.model_id);
  if (auto t = args->Get("threshold")) {
    char* end = nullptr;
    fields.default_threshold = std::strtod(t->c_str(), &end);
    if (end == t->c_str() || *end != '\0' || fields.default_threshold <= 0) {
      std::cerr << "model_vendor package: --threshold must be a positive number\n";
      return 2;
    }
  }

  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::LoadPem(*args->Get("key"));
  if (!key.ok()) return Fail(key.status());
  absl::StatusOr<TfjsWeights> tfjs = ReadTfjsRecognitionWeights(faceapi);
  if (!tfjs.ok()) return Fail(tfjs.status());
  fields.source = {kNpmPackage, tfjs->manifest_sha256, tfjs->bin_sha256};

  absl::StatusOr<std::string> weights = FaceResNet::SerializeFromTfjs(tfjs->tensors);
  if (!weights.ok()) return Fail(weights.status());
  // Embed the self-test through the same seam the partner loads with, on the reference backend.
  absl::StatusOr<std::unique_ptr<FaceResNet>> net =
      MakeEmbeddingNetwork(*weights, EmbeddingBackend::kDlib);
  if (!net.ok()) return Fail(net.status());

  std::vector<std::string> images = RepeatedFlag(raw_args, "selftest-image");
  if (images.empty()) {
    for (const char* s : {"sample1.jpg", "sample2.jpg", "sample3.jpg"}) {
      images.push_back(faceapi + "/demo/" + s);
    }
  }

  EngineOptions options;
  options.detector =
      DetectorOptions{};  // not the partner's fast default: self-test chips as before
  options.detector.upsample = 0;
  absl::StatusOr<std::unique_ptr<FaceEngine>> engine = FaceEngine::Create(options, std::move(*net));
  if (!engine.ok()) return Fail(engine.status());
  ProcessOptions process;
  process.largest_face_only = true;
  process.keep_chips = true;
  std::vector<SelfTestChip> self_test;
  for (ImageAnalysis& a : (*engine)->ProcessFiles(images, process)) {
    if (!a.status.ok()) return Fail(a.status);
    if (a.faces.empty()) {
      return Fail(absl::InvalidArgumentError(a.source + ": no face found for the self-test"));
    }
    self_test.push_back({a.faces[0].chip, a.embeddings[0]});
  }
  if (!args->Has("no-int8-calibration")) {
    std::vector<std::string> calibration_images = RepeatedFlag(raw_args, "calibration-image");
    if (calibration_images.empty()) {
      for (int i = 1; i <= 6; ++i) {
        calibration_images.push_back(faceapi + "/demo/sample" + std::to_string(i) + ".jpg");
      }
    }
    absl::StatusOr<Int8Calibration> calibration =
        Calibrate(**engine, *weights, calibration_images, self_test);
    if (!calibration.ok()) return Fail(calibration.status());
    fields.int8_calibration = *std::move(calibration);
  }

  absl::StatusOr<ModelManifest> manifest =
      WriteModelPackage(*args->Get("out"), fields, *weights, self_test, *key);
  if (!manifest.ok()) return Fail(manifest.status());
  std::cout << "model_vendor package: wrote " << *args->Get("out") << " (" << manifest->model_id
            << " " << manifest->version << ", " << manifest->weights.bytes << " weight bytes, "
            << self_test.size() << " self-test chips, key " << manifest->signing_key_id << ")\n";
  return 0;
}

}  // namespace fedface::vendor
