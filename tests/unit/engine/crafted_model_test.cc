// A model the vendor crafted to answer with inf/NaN (the "free oracle" of issue 10: re-embedding
// that fails only when a chosen face is present). The network here is the real face-api network
// with its final layer scaled past float range, built with the vendor's own conversion code
// (FaceResNet::SerializeFromTfjs): every face it sees overflows. The engine must turn that into a
// failure of the image, with a fixed reason, and never into an embedding or an error of the run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/common/status_macros.h"
#include "core/engine/face_engine.h"
#include "core/package/tfjs_weights.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::testing::HasSubstr;

// The face-api network with the final fully connected layer multiplied by `fc_scale`.
absl::StatusOr<std::unique_ptr<FaceResNet>> FaceApiNetworkWithScaledFc(float fc_scale) {
  ASSIGN_OR_RETURN(TfjsWeights tfjs, ReadTfjsRecognitionWeights(testing::FaceApiDir() + "/model"));
  bool scaled = false;
  for (NamedTensor& t : tfjs.tensors) {
    if (t.name != "fc") continue;
    for (float& v : t.values) v *= fc_scale;
    scaled = true;
  }
  if (!scaled) return absl::NotFoundError("face-api weights without an fc tensor");
  ASSIGN_OR_RETURN(std::string serialized, FaceResNet::SerializeFromTfjs(tfjs.tensors));
  return FaceResNet::FromSerialized(serialized);
}

ImageAnalysis AnalyzeObama(std::unique_ptr<FaceResNet> net) {
  EngineOptions options;
  options.workers = 1;
  absl::StatusOr<std::unique_ptr<FaceEngine>> engine = FaceEngine::Create(options, std::move(net));
  EXPECT_OK(engine);
  if (!engine.ok()) return {};
  const std::string image = testing::DatasetsDir() + "/face_recognition-tests/obama.jpg";
  return (*engine)->ProcessFiles({image}, ProcessOptions{}).at(0);
}

class CraftedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FEDFACE_SKIP_IF_MISSING(testing::FaceApiDir(), "the face-api weights (scripts/fetch_model.sh)");
    FEDFACE_SKIP_IF_MISSING(testing::DatasetsDir(), "../shared/datasets");
  }
};

TEST_F(CraftedModelTest, AnOverflowingModelMakesTheImageAFailureNotAnEmbedding) {
  absl::StatusOr<std::unique_ptr<FaceResNet>> crafted = FaceApiNetworkWithScaledFc(1e38f);
  ASSERT_OK(crafted);
  const ImageAnalysis a = AnalyzeObama(*std::move(crafted));
  EXPECT_THAT(a.status, testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("non-finite or out-of-range embedding")));
  EXPECT_TRUE(a.embeddings.empty());
  EXPECT_EQ(a.faces.size(), 1u);  // the face was found; only its embedding is refused
}

TEST_F(CraftedModelTest, AModelWithHugeButFiniteOutputsIsRefusedToo) {
  // 1e5 keeps every output finite but far outside any real embedding (components near 1e4).
  absl::StatusOr<std::unique_ptr<FaceResNet>> crafted = FaceApiNetworkWithScaledFc(1e5f);
  ASSERT_OK(crafted);
  const ImageAnalysis a = AnalyzeObama(*std::move(crafted));
  EXPECT_THAT(a.status, testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("out-of-range embedding")));
  EXPECT_TRUE(a.embeddings.empty());
}

TEST_F(CraftedModelTest, TheSameNetworkUnscaledEmbedsTheFace) {
  // The control: the conversion path itself yields usable embeddings.
  absl::StatusOr<std::unique_ptr<FaceResNet>> net = FaceApiNetworkWithScaledFc(1.0f);
  ASSERT_OK(net);
  const ImageAnalysis a = AnalyzeObama(*std::move(net));
  ASSERT_OK(a.status);
  ASSERT_EQ(a.embeddings.size(), 1u);
  EXPECT_TRUE(IsUsableEmbedding(a.embeddings[0]));
}

}  // namespace
}  // namespace fedface
