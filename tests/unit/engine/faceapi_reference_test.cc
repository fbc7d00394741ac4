// The converted package against face-api.js's own reference descriptors (TensorFlow.js on the
// same quantized weights), and face_recognition's same/different decisions at 0.6, on every
// embedding backend (onednn-int8 with the fixture package's signed calibration).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "core/engine/face_engine.h"
#include "core/package/package_verifier.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

class FaceApiReferenceTest : public ::testing::TestWithParam<EmbeddingBackend> {
 protected:
  void SetUp() override {
    data_ = testing::DatasetsDir();
    if (data_.empty()) FEDFACE_SKIP_OR_FAIL("../shared/datasets is absent; skipping test");
    if (testing::TestPackageDir().empty()) {
      FEDFACE_SKIP_OR_FAIL("test package absent (run scripts/fetch_model.sh); skipping test");
    }
    auto model =
        LoadVerifiedModel(testing::TestPackageDir(), testing::TestVendorKey() + ".pub", GetParam());
    ASSERT_TRUE(model.ok()) << model.status();
    net_ = std::move(model->net);
  }

  // face-api's chip: the image drawn (canvas drawImage, bilinear) at its exact fractional size
  // with the longer side 150, centred on a black 150x150 square.
  static cv::Mat FaceApiChip(const cv::Mat& rgb) {
    const double scale = 150.0 / std::max(rgb.cols, rgb.rows);
    const cv::Mat place = (cv::Mat_<double>(2, 3) << scale, 0, (150 - rgb.cols * scale) / 2, 0,
                           scale, (150 - rgb.rows * scale) / 2);
    cv::Mat chip;
    cv::warpAffine(rgb, chip, place, cv::Size(150, 150), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                   cv::Scalar(0, 0, 0));
    return chip;
  }

  Embedding Reference(const std::string& json_file) {
    std::ifstream in(data_ + "/faceapi-reference/" + json_file);
    nlohmann::json j = nlohmann::json::parse(in);
    Embedding e{};
    EXPECT_EQ(j.size(), 128u);
    for (int i = 0; i < 128; ++i) e[i] = j[i].get<float>();
    return e;
  }

  std::string data_;
  std::unique_ptr<FaceResNet> net_;
};

TEST_P(FaceApiReferenceTest, MatchesFaceApiDescriptorsWithinSixHundredths) {
  for (const auto& [image, json] : {std::pair{"face1.png", "faceDescriptor1.json"},
                                    std::pair{"face2.png", "faceDescriptor2.json"},
                                    std::pair{"face_rectangular.png", "faceDescriptorRect.json"}}) {
    absl::StatusOr<cv::Mat> rgb = DecodeImageFile(data_ + "/faceapi-reference/" + image);
    ASSERT_TRUE(rgb.ok()) << rgb.status();
    const Embedding ours = net_->Embed({FaceApiChip(*rgb)})[0];
    const float distance = EuclideanDistance(ours, Reference(json));
    std::cout << image << ": distance to face-api.js descriptor " << distance << "\n";
    EXPECT_LT(distance, 0.06f) << image;
  }
}

TEST_P(FaceApiReferenceTest, MakesFaceRecognitionsSameAndDifferentDecisions) {
  EngineOptions options;
  options.detector.upsample = 1;
  auto engine = FaceEngine::Create(options, std::move(net_));
  ASSERT_TRUE(engine.ok()) << engine.status();
  const std::string dir = data_ + "/face_recognition-tests/";
  ProcessOptions process;
  process.largest_face_only = true;
  std::vector<ImageAnalysis> r = (*engine)->ProcessFiles(
      {dir + "obama.jpg", dir + "obama2.jpg", dir + "obama3.jpg", dir + "biden.jpg"}, process);
  for (const ImageAnalysis& a : r) {
    ASSERT_TRUE(a.status.ok()) << a.status;
    ASSERT_EQ(a.embeddings.size(), 1u) << a.source;
  }
  const float obama2 = EuclideanDistance(r[0].embeddings[0], r[1].embeddings[0]);
  const float obama3 = EuclideanDistance(r[0].embeddings[0], r[2].embeddings[0]);
  const float biden = EuclideanDistance(r[0].embeddings[0], r[3].embeddings[0]);
  std::cout << "obama-obama2 " << obama2 << ", obama-obama3 " << obama3 << ", obama-biden " << biden
            << "\n";
  EXPECT_LE(obama2, 0.6f);
  EXPECT_LE(obama3, 0.6f);
  EXPECT_GT(biden, 0.6f);
}

INSTANTIATE_TEST_SUITE_P(Backends, FaceApiReferenceTest,
                         ::testing::Values(EmbeddingBackend::kDlib, EmbeddingBackend::kOneDnn,
                                           EmbeddingBackend::kOneDnnInt8),
                         [](const auto& info) {
                           std::string name(EmbeddingBackendName(info.param));
                           std::replace(name.begin(), name.end(), '-', '_');  // gtest: [A-Za-z0-9_]
                           return name;
                         });

}  // namespace
}  // namespace fedface
