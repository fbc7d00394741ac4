// The embedding backends behind MakeEmbeddingNetwork: onednn's descriptors within 1e-4 of dlib's
// (the reference) on real chips in every batch shape; weights a backend refuses, both refuse with
// the same message; parameters that do not fit the architecture refused by onednn's own checks
// (a crafted package never reaches an out-of-bounds read); the backend names and their errors.
#include "core/engine/embedding_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>

#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/config/config_file.h"
#include "core/engine/face_engine.h"
#include "core/engine/face_resnet_onednn.h"
#include "core/engine/face_resnet_testing.h"
#include "core/package/package_verifier.h"
#include "partner_node/enroll/gallery_config_keys.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::fedface::testing_only::Misshape;
using ::testing::HasSubstr;
using ::testing::StartsWith;

float MaxAbsDiff(const std::vector<Embedding>& a, const std::vector<Embedding>& b) {
  float worst = 0.f;
  for (size_t i = 0; i < a.size(); ++i) {
    for (int k = 0; k < kEmbeddingDim; ++k) worst = std::max(worst, std::fabs(a[i][k] - b[i][k]));
  }
  return worst;
}

// The signed test package, verified against the test vendor key.
absl::StatusOr<VerifiedPackage> TestPackage() {
  ASSIGN_OR_RETURN(Ed25519PublicKey key,
                   Ed25519PublicKey::LoadPem(testing::TestVendorKey() + ".pub"));
  return VerifyModelPackage(testing::TestPackageDir(), key);
}

// The package's self-test chips and the largest face of every face_recognition test photo and
// of the bbt gallery, cut by the engine.
std::vector<cv::Mat> ReferenceChips() {
  std::vector<cv::Mat> chips;
  absl::StatusOr<VerifiedPackage> package = TestPackage();
  EXPECT_OK(package);
  if (package.ok()) chips = package->chips;
  std::vector<std::string> photos;
  for (const std::string folder : {"/face_recognition-tests", "/faceapi-bbt/gallery"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(testing::DatasetsDir() + folder)) {
      const std::string ext = entry.path().extension().string();
      if (ext == ".jpg" || ext == ".png") photos.push_back(entry.path().string());
    }
  }
  std::sort(photos.begin(), photos.end());
  auto engine = FaceEngine::Create(EngineOptions{}, nullptr);
  EXPECT_OK(engine);
  if (!engine.ok()) return chips;
  ProcessOptions process;
  process.embed = false;
  process.keep_chips = true;
  process.largest_face_only = true;
  for (const ImageAnalysis& a : (*engine)->ProcessFiles(photos, process)) {
    if (!a.faces.empty()) chips.push_back(a.faces[0].chip);
  }
  return chips;
}

TEST(EmbeddingBackendTest, OneDnnMatchesDlibWithinOneTenThousandthInEveryBatchShape) {
  FEDFACE_SKIP_IF_MISSING(testing::DatasetsDir(), "../shared/datasets");
  FEDFACE_SKIP_IF_MISSING(testing::TestPackageDir(), "the test package (scripts/fetch_model.sh)");
  const std::vector<cv::Mat> chips = ReferenceChips();
  ASSERT_GE(chips.size(), 40u);
  const std::string pub = testing::TestVendorKey() + ".pub";
  absl::StatusOr<LoadedModel> dlib =
      LoadVerifiedModel(testing::TestPackageDir(), pub, EmbeddingBackend::kDlib);
  ASSERT_OK(dlib);
  absl::StatusOr<LoadedModel> onednn =
      LoadVerifiedModel(testing::TestPackageDir(), pub, EmbeddingBackend::kOneDnn);
  ASSERT_OK(onednn);

  const std::vector<Embedding> reference = dlib->net->Embed(chips);
  // One call (batches of 16 then powers of two), one chip per call, and a clone.
  const std::vector<Embedding> batched = onednn->net->Embed(chips);
  std::vector<Embedding> single;
  for (const cv::Mat& chip : chips) single.push_back(onednn->net->Embed({chip})[0]);
  const std::vector<Embedding> cloned = onednn->net->Clone()->Embed(chips);
  const float worst = std::max({MaxAbsDiff(reference, batched), MaxAbsDiff(reference, single),
                                MaxAbsDiff(reference, cloned)});
  std::cout << chips.size() << " chips: onednn vs dlib max abs diff " << worst
            << ", self-test max distance dlib " << dlib->self_test_max_distance << " onednn "
            << onednn->self_test_max_distance << "\n";
  EXPECT_LT(worst, 1e-4f);
}

// Every face of the npm sample photos, as the vendor's packaging command calibrates by default.
std::vector<cv::Mat> NpmSampleChips() {
  std::vector<std::string> photos;
  for (int i = 1; i <= 6; ++i) {
    photos.push_back(testing::FaceApiDir() + "/demo/sample" + std::to_string(i) + ".jpg");
  }
  auto engine = FaceEngine::Create(EngineOptions{}, nullptr);
  EXPECT_OK(engine);
  std::vector<cv::Mat> chips;
  if (!engine.ok()) return chips;
  ProcessOptions process;
  process.embed = false;
  process.keep_chips = true;
  for (const ImageAnalysis& a : (*engine)->ProcessFiles(photos, process)) {
    for (const AnalyzedFace& f : a.faces) chips.push_back(f.chip);
  }
  return chips;
}

TEST(EmbeddingBackendTest, OneDnnInt8StaysCloseToFp32) {
  FEDFACE_SKIP_IF_MISSING(testing::DatasetsDir(), "../shared/datasets");
  FEDFACE_SKIP_IF_MISSING(testing::TestPackageDir(), "the test package (scripts/fetch_model.sh)");
  FEDFACE_SKIP_IF_MISSING(testing::FaceApiDir(), "the face-api folder (scripts/fetch_model.sh)");
  absl::StatusOr<VerifiedPackage> package = TestPackage();
  ASSERT_OK(package);
  absl::StatusOr<FaceResNetParameters> params = FaceResNet::CheckedParameters(package->weights);
  ASSERT_OK(params);
  const std::vector<cv::Mat> calibration_chips = NpmSampleChips();
  ASSERT_GE(calibration_chips.size(), 15u);
  absl::StatusOr<Int8Calibration> calibration = ComputeInt8Calibration(*params, calibration_chips);
  ASSERT_OK(calibration);
  absl::StatusOr<std::unique_ptr<FaceResNet>> fp32 = MakeOneDnnFaceResNet(*params);
  ASSERT_OK(fp32);
  absl::StatusOr<std::unique_ptr<FaceResNet>> int8 =
      MakeOneDnnInt8FaceResNet(*params, *calibration);
  ASSERT_OK(int8);

  const std::vector<cv::Mat> chips = ReferenceChips();
  const std::vector<Embedding> reference = (*fp32)->Embed(chips);
  const std::vector<Embedding> batched = (*int8)->Embed(chips);
  std::vector<Embedding> single;
  for (const cv::Mat& chip : chips) single.push_back((*int8)->Embed({chip})[0]);
  float max_distance = 0.f;
  double sum_abs = 0;
  for (size_t i = 0; i < chips.size(); ++i) {
    max_distance = std::max(max_distance, EuclideanDistance(reference[i], batched[i]));
    for (int k = 0; k < kEmbeddingDim; ++k) sum_abs += std::fabs(reference[i][k] - batched[i][k]);
  }
  // What a decision sees: the distance between two faces, on each backend.
  float worst_pair = 0.f;
  for (size_t i = 0; i < chips.size(); ++i) {
    for (size_t j = i + 1; j < chips.size(); ++j) {
      worst_pair = std::max(worst_pair, std::fabs(EuclideanDistance(batched[i], batched[j]) -
                                                  EuclideanDistance(reference[i], reference[j])));
    }
  }
  std::cout << "pairwise distances: max |int8 - fp32| " << worst_pair << "\n";
  EXPECT_LT(worst_pair, 0.05f);
  std::cout << chips.size() << " chips, calibrated on " << calibration_chips.size()
            << " npm sample faces: onednn-int8 vs onednn max abs diff "
            << MaxAbsDiff(reference, batched) << ", mean abs diff "
            << sum_abs / (chips.size() * kEmbeddingDim) << ", max distance " << max_distance
            << "\n";
  // The batch shape does not change int8's numbers (each chip is quantized on its own).
  EXPECT_EQ(MaxAbsDiff(batched, single), 0.f);
  EXPECT_LT(max_distance, 0.05f);
}

// Edits of the package's weights, as a hostile vendor could sign them.
class CraftedWeightsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FEDFACE_SKIP_IF_MISSING(testing::TestPackageDir(), "the test package (scripts/fetch_model.sh)");
    if (genuine_ == nullptr) {
      absl::StatusOr<VerifiedPackage> package = TestPackage();
      ASSERT_OK(package);
      genuine_ = new std::string(std::move(package->weights));
    }
  }

  // Both backends refuse `bytes`, with the same one-line message starting "weights".
  static void ExpectBothRefuse(const std::string& bytes, const std::string& what) {
    absl::StatusOr<std::unique_ptr<FaceResNet>> dlib =
        MakeEmbeddingNetwork(bytes, EmbeddingBackend::kDlib);
    absl::StatusOr<std::unique_ptr<FaceResNet>> onednn =
        MakeEmbeddingNetwork(bytes, EmbeddingBackend::kOneDnn);
    ASSERT_FALSE(dlib.ok()) << what;
    ASSERT_FALSE(onednn.ok()) << what;
    EXPECT_EQ(onednn.status(), dlib.status()) << what;
    EXPECT_THAT(std::string(onednn.status().message()), StartsWith("weights")) << what;
  }

  static FaceResNetParameters Genuine() {
    absl::StatusOr<FaceResNetParameters> p = FaceResNet::CheckedParameters(*genuine_);
    EXPECT_OK(p);
    return p.ok() ? *p : FaceResNetParameters{};
  }

  static std::string* genuine_;
};

std::string* CraftedWeightsTest::genuine_ = nullptr;

TEST_F(CraftedWeightsTest, WhatTheDlibPathRefusesTheOneDnnPathRefusesWithTheSameMessage) {
  for (Misshape which : {Misshape::kConvMissingValues, Misshape::kAffineNeverSetUp,
                         Misshape::kFcMissingOutput, Misshape::kConvFiltersReshaped}) {
    absl::StatusOr<std::string> bytes = testing_only::MisshapedSerialization(*genuine_, which);
    ASSERT_OK(bytes);
    ExpectBothRefuse(*bytes, "misshape " + std::to_string(static_cast<int>(which)));
  }
  ExpectBothRefuse(genuine_->substr(0, genuine_->size() / 2), "truncated");
  ExpectBothRefuse(*genuine_ + "x", "trailing byte");
  ExpectBothRefuse("", "empty");
}

TEST_F(CraftedWeightsTest, OneDnnChecksEverySizeItIndexesBy) {
  ASSERT_OK(MakeOneDnnFaceResNet(Genuine()));
  struct Case {
    const char* what;
    std::function<void(FaceResNetParameters&)> edit;
    const char* message;
  };
  const Case cases[] = {
      {"a unit missing", [](auto& p) { p.convs.pop_back(); }, "28 conv units"},
      {"a unit too many", [](auto& p) { p.convs.push_back(p.convs.back()); }, "30 conv units"},
      {"filters short", [](auto& p) { p.convs[5].filters.pop_back(); }, "unit 5 filters"},
      {"filters long", [](auto& p) { p.convs[0].filters.push_back(0); }, "unit 0 filters"},
      {"bias short", [](auto& p) { p.convs[28].bias.pop_back(); }, "unit 28 bias"},
      {"gamma long", [](auto& p) { p.convs[3].gamma.push_back(1); }, "unit 3 gamma"},
      {"beta empty", [](auto& p) { p.convs[7].beta.clear(); }, "unit 7 beta"},
      {"units swapped", [](auto& p) { std::swap(p.convs[1], p.convs[7]); }, "unit 1 filters"},
      {"fc short", [](auto& p) { p.fc.pop_back(); }, "fc has 32767 values"},
      {"mean NaN", [](auto& p) { p.mean_rgb[1] = std::numeric_limits<float>::quiet_NaN(); },
       "input mean"},
  };
  for (const Case& c : cases) {
    FaceResNetParameters p = Genuine();
    c.edit(p);
    absl::StatusOr<std::unique_ptr<FaceResNet>> net = MakeOneDnnFaceResNet(p);
    ASSERT_FALSE(net.ok()) << c.what;
    EXPECT_THAT(std::string(net.status().message()), StartsWith("weights (onednn): ")) << c.what;
    EXPECT_THAT(std::string(net.status().message()), HasSubstr(c.message)) << c.what;
  }
}

// The int8 calibration is the vendor's too: counts and ranges refused before use, and scales in
// range that wreck quantization (everything saturated, everything zero) still give finite
// descriptors (which the self-test then refuses), never a crash or an out-of-bounds access.
TEST_F(CraftedWeightsTest, Int8RefusesACalibrationItCannotUseAndSurvivesHostileScales) {
  absl::StatusOr<std::unique_ptr<FaceResNet>> none =
      MakeEmbeddingNetwork(*genuine_, EmbeddingBackend::kOneDnnInt8, nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("the package has no int8 calibration"));

  Int8Calibration good;
  good.activation_scales.assign(kInt8ActivationScaleCount, 0.05);
  good.chips = 19;
  ASSERT_OK(MakeEmbeddingNetwork(*genuine_, EmbeddingBackend::kOneDnnInt8, &good));
  struct Case {
    const char* what;
    std::function<void(Int8Calibration&)> edit;
    const char* message;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      {"a scale missing", [](auto& c) { c.activation_scales.pop_back(); },
       "int8_calibration.activation_scales: 28 scales, the architecture needs 29"},
      {"a scale too many", [](auto& c) { c.activation_scales.push_back(1); }, "30 scales"},
      {"no scales", [](auto& c) { c.activation_scales.clear(); }, "0 scales"},
      {"NaN", [nan](auto& c) { c.activation_scales[4] = nan; }, "activation_scales[4]: nan"},
      {"infinity", [inf](auto& c) { c.activation_scales[0] = inf; }, "activation_scales[0]: inf"},
      {"zero", [](auto& c) { c.activation_scales[28] = 0; }, "activation_scales[28]: 0 is not"},
      {"negative", [](auto& c) { c.activation_scales[9] = -0.05; }, "activation_scales[9]: -0.05"},
      {"too small", [](auto& c) { c.activation_scales[1] = 1e-9; }, "activation_scales[1]"},
      {"too large", [](auto& c) { c.activation_scales[2] = 1e6; }, "activation_scales[2]"},
      {"no chips", [](auto& c) { c.chips = 0; }, "int8_calibration.chips: 0 is outside"},
      {"tolerance 0", [](auto& c) { c.self_test_tolerance = 0; }, "self_test_tolerance: 0"},
      {"tolerance 0.5", [](auto& c) { c.self_test_tolerance = 0.5; }, "self_test_tolerance: 0.5"},
      {"tolerance NaN", [nan](auto& c) { c.self_test_tolerance = nan; }, "self_test_tolerance"},
  };
  for (const Case& c : cases) {
    Int8Calibration calibration = good;
    c.edit(calibration);
    absl::StatusOr<std::unique_ptr<FaceResNet>> net =
        MakeEmbeddingNetwork(*genuine_, EmbeddingBackend::kOneDnnInt8, &calibration);
    ASSERT_FALSE(net.ok()) << c.what;
    EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(std::string(net.status().message()), StartsWith("int8_calibration.")) << c.what;
    EXPECT_THAT(std::string(net.status().message()), HasSubstr(c.message)) << c.what;
  }

  // In range but hostile: every activation saturated, every activation zero, alternating.
  const std::vector<cv::Mat> chips(
      3, cv::Mat(kChipSize, kChipSize, CV_8UC3, cv::Scalar(90, 140, 200)));
  for (double scale : {kMinInt8ActivationScale, kMaxInt8ActivationScale, -1.0}) {
    Int8Calibration hostile = good;
    for (int i = 0; i < kInt8ActivationScaleCount; ++i) {
      hostile.activation_scales[i] =
          scale > 0 ? scale : (i % 2 ? kMinInt8ActivationScale : kMaxInt8ActivationScale);
    }
    absl::StatusOr<std::unique_ptr<FaceResNet>> net =
        MakeEmbeddingNetwork(*genuine_, EmbeddingBackend::kOneDnnInt8, &hostile);
    ASSERT_OK(net) << scale;
    for (const Embedding& e : (*net)->Embed(chips)) {
      for (float v : e) EXPECT_TRUE(std::isfinite(v)) << scale;
    }
  }
}

TEST(EmbeddingBackendNamesTest, ParseNamesTheKeyAndTheChoices) {
  ASSERT_OK(ParseEmbeddingBackend("onednn", "--backend"));
  EXPECT_EQ(*ParseEmbeddingBackend("dlib", "--backend"), EmbeddingBackend::kDlib);
  EXPECT_EQ(*ParseEmbeddingBackend("onednn", "--backend"), EmbeddingBackend::kOneDnn);
  EXPECT_EQ(*ParseEmbeddingBackend("onednn-int8", "--backend"), EmbeddingBackend::kOneDnnInt8);
  absl::StatusOr<EmbeddingBackend> bad = ParseEmbeddingBackend("tensorrt", "--backend");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--backend: unknown embedding backend 'tensorrt' (expected dlib | onednn | "
            "onednn-int8)");
}

TEST(EmbeddingBackendNamesTest, TheConfigKeyAcceptsExactlyTheBackendNames) {
  const std::string dir = testing::MakeTempDir("backend_config");
  ConfigSchema schema("test", partner::EngineConfigKeys());
  std::vector<std::string> names;
  std::string default_name;
  for (const ConfigKey& key : schema.keys()) {
    if (key.path == "engine.backend") names = key.one_of, default_name = key.default_value;
  }
  EXPECT_EQ(absl::StrJoin(names, " | "), EmbeddingBackendNames());
  // The config's default is the engine's (onednn; dlib only when asked or with exact parity).
  EXPECT_EQ(default_name, EmbeddingBackendName(kDefaultEmbeddingBackend));
  EXPECT_EQ(EngineOptions{}.backend, kDefaultEmbeddingBackend);
  for (const std::string& name : names) {
    std::ofstream(dir + "/ok.yaml") << "engine:\n  backend: " << name << "\n";
    absl::StatusOr<Config> config = Config::Load(dir + "/ok.yaml", schema);
    ASSERT_OK(config);
    EXPECT_EQ(config->GetString("engine.backend"), name);
  }
  std::ofstream(dir + "/bad.yaml") << "engine:\n  backend: onednn-fp16\n";
  absl::StatusOr<Config> bad = Config::Load(dir + "/bad.yaml", schema);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("engine.backend: 'onednn-fp16' is not one of dlib | onednn | onednn-int8"));
}

}  // namespace
}  // namespace fedface
