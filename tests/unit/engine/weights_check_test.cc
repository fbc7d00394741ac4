// FaceResNet::FromSerialized refuses, before any forward pass and with one line naming the layer,
// a validly serialized dlib network that is not the architecture's: a parameter tensor of another
// size or shape, a layer never set up (these first by the pre-walk over the bytes, see also
// weights_prewalk_test.cc; the check after dlib's load stays behind it), non-finite parameters;
// and streams that are truncated or carry trailing bytes. The genuine face-api weights (converted
// with the vendor's own code) still load and embed. Mis-shaped networks come from
// face_resnet_testing.h (dlib stays out of tests).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <opencv2/core.hpp>

#include "core/engine/face_resnet.h"
#include "core/engine/face_resnet_testing.h"
#include "core/package/tfjs_weights.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::fedface::testing::StatusIs;
using ::fedface::testing_only::Misshape;
using ::fedface::testing_only::MisshapedSerialization;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

class WeightsCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FEDFACE_SKIP_IF_MISSING(testing::FaceApiDir(), "the face-api weights (scripts/fetch_model.sh)");
    if (tensors_ == nullptr) {
      absl::StatusOr<TfjsWeights> tfjs =
          ReadTfjsRecognitionWeights(testing::FaceApiDir() + "/model");
      ASSERT_OK(tfjs);
      tensors_ = new std::vector<NamedTensor>(std::move(tfjs->tensors));
      absl::StatusOr<std::string> bytes = FaceResNet::SerializeFromTfjs(*tensors_);
      ASSERT_OK(bytes);
      genuine_ = new std::string(*std::move(bytes));
    }
  }

  // The genuine tensors with `edit` applied to the one named `name`, converted by the vendor's
  // code.
  static std::string ConvertedWith(const std::string& name,
                                   const std::function<void(std::vector<float>&)>& edit) {
    std::vector<NamedTensor> tensors = *tensors_;
    bool found = false;
    for (NamedTensor& t : tensors) {
      if (t.name != name) continue;
      edit(t.values);
      found = true;
    }
    EXPECT_TRUE(found) << name;
    absl::StatusOr<std::string> bytes = FaceResNet::SerializeFromTfjs(tensors);
    EXPECT_OK(bytes);
    return bytes.ok() ? *bytes : std::string();
  }

  static std::string Misshaped(Misshape which) {
    absl::StatusOr<std::string> bytes = MisshapedSerialization(*genuine_, which);
    EXPECT_OK(bytes);
    return bytes.ok() ? *bytes : std::string();
  }

  // The whole message matches `regex` (which starts with "weights": LoadVerifiedModel prefixes
  // the file) and is one line.
  static ::testing::Matcher<std::string> OneLineAbout(const std::string& regex) {
    return ::testing::AllOf(MatchesRegex(regex), Not(HasSubstr("\n")));
  }

  static std::vector<NamedTensor>* tensors_;
  static std::string* genuine_;
};

std::vector<NamedTensor>* WeightsCheckTest::tensors_ = nullptr;
std::string* WeightsCheckTest::genuine_ = nullptr;

// A 150x150 RGB chip with some structure (a flat chip would hide a channel mix-up).
cv::Mat TestChip() {
  cv::Mat chip(kChipSize, kChipSize, CV_8UC3);
  for (int y = 0; y < kChipSize; ++y) {
    for (int x = 0; x < kChipSize; ++x) {
      chip.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>((x * 3 + y) % 256), static_cast<uchar>((y * 5) % 256),
                    static_cast<uchar>((x * y) % 256));
    }
  }
  return chip;
}

TEST_F(WeightsCheckTest, TheGenuineWeightsLoadAndEmbed) {
  absl::StatusOr<std::unique_ptr<FaceResNet>> net = FaceResNet::FromSerialized(*genuine_);
  ASSERT_OK(net);
  const std::vector<Embedding> first = (*net)->Embed({TestChip()});
  ASSERT_EQ(first.size(), 1u);
  float norm = 0.f;
  for (float v : first[0]) {
    ASSERT_TRUE(std::isfinite(v));
    norm += v * v;
  }
  EXPECT_GT(norm, 0.f);
  // Loading is deterministic: a second load (and a clone) embeds the same chip identically.
  absl::StatusOr<std::unique_ptr<FaceResNet>> again = FaceResNet::FromSerialized(*genuine_);
  ASSERT_OK(again);
  EXPECT_EQ((*again)->Embed({TestChip()})[0], first[0]);
  EXPECT_EQ((*net)->Clone()->Embed({TestChip()})[0], first[0]);
}

TEST_F(WeightsCheckTest, RefusesAConvLayerWithTooFewValues) {
  EXPECT_THAT(
      FaceResNet::FromSerialized(Misshaped(Misshape::kConvMissingValues)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               OneLineAbout("weights: layer [0-9]+ \\(con\\) at byte [0-9]+: parameter tensor "
                            "has 9216 values, the architecture needs 9248 "
                            "\\(9248x1x1x1\\)")));
}

TEST_F(WeightsCheckTest, RefusesConvFiltersOfAnotherShape) {
  // Same values, but the layer would read them as 32 filters of 31x3x3.
  EXPECT_THAT(
      FaceResNet::FromSerialized(Misshaped(Misshape::kConvFiltersReshaped)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               OneLineAbout("weights: layer [0-9]+ \\(con\\) at byte [0-9]+: filters has 8928 "
                            "values, the architecture needs 9216 \\(32x32x3x3\\)")));
}

TEST_F(WeightsCheckTest, RefusesAScaleLayerThatWasNeverSetUp) {
  EXPECT_THAT(FaceResNet::FromSerialized(Misshaped(Misshape::kAffineNeverSetUp)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       OneLineAbout("weights: layer [0-9]+ \\(affine\\) at byte [0-9]+: parameter "
                                    "tensor has 0 values, the architecture needs 64 "
                                    "\\(64x1x1x1\\)")));
}

TEST_F(WeightsCheckTest, RefusesAFullyConnectedLayerMissingAnOutput) {
  EXPECT_THAT(
      FaceResNet::FromSerialized(Misshaped(Misshape::kFcMissingOutput)),
      StatusIs(absl::StatusCode::kInvalidArgument,
               OneLineAbout("weights: layer 1 \\(fc\\) at byte [0-9]+: parameter tensor has "
                            "32512 values, the architecture needs 32768 "
                            "\\(256x128x1x1\\)")));
}

TEST_F(WeightsCheckTest, RefusesANanInAConvFilter) {
  const std::string bytes = ConvertedWith("conv32_1/conv1/conv/filters", [](std::vector<float>& v) {
    v[5] = std::numeric_limits<float>::quiet_NaN();
  });
  EXPECT_THAT(FaceResNet::FromSerialized(bytes),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       OneLineAbout("weights: layer [0-9]+ \\(con\\): parameter [0-9]+ of 9248 is "
                                    "nan \\(every parameter must be finite\\)")));
}

TEST_F(WeightsCheckTest, RefusesAnInfiniteScale) {
  const std::string bytes =
      ConvertedWith("conv64_2/conv2/scale/weights",
                    [](std::vector<float>& v) { v[0] = std::numeric_limits<float>::infinity(); });
  EXPECT_THAT(FaceResNet::FromSerialized(bytes),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       OneLineAbout("weights: layer [0-9]+ \\(affine\\): parameter 0 of 128 is "
                                    "inf \\(every parameter must be finite\\)")));
}

TEST_F(WeightsCheckTest, RefusesTrailingBytes) {
  EXPECT_THAT(FaceResNet::FromSerialized(*genuine_ + std::string(3, '\0')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       OneLineAbout("weights: 3 trailing bytes after the network \\(which ends at "
                                    "byte [0-9]+\\)")));
}

TEST_F(WeightsCheckTest, RefusesATruncatedStream) {
  for (size_t keep : {genuine_->size() - 1, genuine_->size() / 2, size_t{10}}) {
    SCOPED_TRACE(keep);
    EXPECT_THAT(FaceResNet::FromSerialized(genuine_->substr(0, keep)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         OneLineAbout("weights: the network ends early \\(" + std::to_string(keep) +
                                      " bytes, truncated\\?\\): .*")));
  }
}

TEST_F(WeightsCheckTest, RefusesAnEmptyStream) {
  EXPECT_THAT(FaceResNet::FromSerialized(""),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr("\n"))));
}

}  // namespace
}  // namespace fedface
