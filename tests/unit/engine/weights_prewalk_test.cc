// PrewalkFaceResNetWeights (and so FaceResNet::FromSerialized, which runs it before dlib) refuses
// with one line naming the layer and byte offset, without crashing or allocating by the header,
// streams that dlib 19.24's own deserializer would crash on or allocate for: tensor headers with
// a negative dimension (also two that multiply to the right count), huge dimensions, counts or
// shapes other than the architecture's, truncated headers and values, non-empty training state,
// huge string lengths, bad integer control bytes. The streams are the real converted face-api
// network with one header re-encoded (the test carries its own encoder of dlib's integers).
#include "core/engine/weights_prewalk.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/engine/face_resnet.h"
#include "core/package/tfjs_weights.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::fedface::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// dlib's integer encoding (serialize.h pack_int): control byte = number of little-endian
// magnitude bytes, top bit set when negative.
std::string DlibInt(long long value) {
  const bool negative = value < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  std::string bytes;
  do {
    bytes.push_back(static_cast<char>(magnitude & 0xFF));
    magnitude >>= 8;
  } while (magnitude != 0);
  return std::string(1, static_cast<char>(bytes.size() | (negative ? 0x80 : 0))) + bytes;
}

// A resizable_tensor (version 2) or alias_tensor (version 1) header.
std::string Header(int version, long long n, long long k, long long nr, long long nc) {
  return DlibInt(version) + DlibInt(n) + DlibInt(k) + DlibInt(nr) + DlibInt(nc);
}

std::string DlibString(const std::string& s) {
  return DlibInt(static_cast<long long>(s.size())) + s;
}

class WeightsPrewalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FEDFACE_SKIP_IF_MISSING(testing::FaceApiDir(), "the face-api weights (scripts/fetch_model.sh)");
    if (genuine_ == nullptr) {
      absl::StatusOr<TfjsWeights> tfjs =
          ReadTfjsRecognitionWeights(testing::FaceApiDir() + "/model");
      ASSERT_OK(tfjs);
      absl::StatusOr<std::string> bytes = FaceResNet::SerializeFromTfjs(tfjs->tensors);
      ASSERT_OK(bytes);
      genuine_ = new std::string(*std::move(bytes));
    }
  }

  // Byte offset of the parameter tensor header of the first 3x3 con layer of 32 filters (the
  // input-most one: layer details are written input first): 32 x 32x3x3 + 32 = 9248 values.
  static size_t FirstConHeader() {
    const std::string pattern = DlibString("con_5") + Header(2, 9248, 1, 1, 1);
    const size_t at = genuine_->find(pattern);
    EXPECT_NE(at, std::string::npos);
    return at + DlibString("con_5").size();
  }

  // The genuine stream with the `length` bytes at `at` replaced by `with`.
  static std::string Spliced(size_t at, size_t length, const std::string& with) {
    std::string out = *genuine_;
    out.replace(at, length, with);
    return out;
  }

  // Both the pre-walk and the full load refuse `bytes` with `regex` (whole message, one line).
  static void ExpectRefused(const std::string& bytes, const std::string& regex) {
    const auto about = StatusIs(absl::StatusCode::kInvalidArgument,
                                AllOf(MatchesRegex(regex), Not(HasSubstr("\n"))));
    EXPECT_THAT(PrewalkFaceResNetWeights(bytes), about);
    EXPECT_THAT(FaceResNet::FromSerialized(bytes).status(), about);
  }

  static std::string* genuine_;
};

std::string* WeightsPrewalkTest::genuine_ = nullptr;

const size_t kParamHeaderSize = Header(2, 9248, 1, 1, 1).size();

TEST_F(WeightsPrewalkTest, AcceptsTheGenuineNetwork) {
  EXPECT_OK(PrewalkFaceResNetWeights(*genuine_));
  EXPECT_OK(FaceResNet::FromSerialized(*genuine_).status());
}

TEST_F(WeightsPrewalkTest, RefusesANegativeDimension) {
  const size_t at = FirstConHeader();
  ExpectRefused(Spliced(at, kParamHeaderSize, Header(2, 9248, -1, 1, 1)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": parameter tensor has a negative dimension \\(9248x-1x1x1\\)");
}

TEST_F(WeightsPrewalkTest, RefusesTwoNegativeDimensionsWhoseProductIsRight) {
  // dlib would size the tensor at (-9248) x (-1) = 9248 values and keep the negative shape.
  const size_t at = FirstConHeader();
  ExpectRefused(Spliced(at, kParamHeaderSize, Header(2, -9248, -1, 1, 1)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": parameter tensor has a negative dimension \\(-9248x-1x1x1\\)");
}

TEST_F(WeightsPrewalkTest, RefusesAHugeDimension) {
  const size_t at = FirstConHeader();
  ExpectRefused(Spliced(at, kParamHeaderSize, Header(2, 9248, 1LL << 40, 1, 1)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": parameter tensor has 10168283533672448 values, the architecture needs "
                    "9248 \\(9248x1x1x1\\)");
}

TEST_F(WeightsPrewalkTest, RefusesDimensionsWhoseProductOverflows) {
  const size_t at = FirstConHeader();
  ExpectRefused(Spliced(at, kParamHeaderSize, Header(2, 1LL << 40, 1LL << 40, 1, 1)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": parameter tensor is 1099511627776x1099511627776x1x1: more than 2\\^63 "
                    "values");
}

TEST_F(WeightsPrewalkTest, RefusesTheRightCountInAnotherShape) {
  const size_t at = FirstConHeader();
  ExpectRefused(Spliced(at, kParamHeaderSize, Header(2, 1, 9248, 1, 1)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": parameter tensor is 1x9248x1x1, the architecture needs 9248x1x1x1");
}

TEST_F(WeightsPrewalkTest, RefusesANegativeDimensionInAFilterView) {
  // con_'s filters view (alias_tensor, version 1) of the same layer: 32 x 32x3x3.
  const std::string view = Header(1, 32, 32, 3, 3);
  const size_t at = genuine_->find(view, FirstConHeader());
  ASSERT_NE(at, std::string::npos);
  ExpectRefused(Spliced(at, view.size(), Header(1, 32, -32, 3, 3)),
                "weights: layer [0-9]+ \\(con\\) at byte " + std::to_string(at) +
                    ": filters has a negative dimension \\(32x-32x3x3\\)");
}

TEST_F(WeightsPrewalkTest, RefusesAHeaderCutShort) {
  const size_t at = FirstConHeader();
  const std::string cut = genuine_->substr(0, at + 5);
  ExpectRefused(cut, "weights: the network ends early \\(" + std::to_string(cut.size()) +
                         " bytes, truncated\\?\\): layer [0-9]+ \\(con\\) at byte [0-9]+: "
                         "parameter tensor needs [0-9]+ bytes, 0 remain");
}

TEST_F(WeightsPrewalkTest, RefusesValuesCutShort) {
  const size_t at = FirstConHeader();
  const std::string cut = genuine_->substr(0, at + kParamHeaderSize + 100);
  ExpectRefused(cut, "weights: the network ends early \\(" + std::to_string(cut.size()) +
                         " bytes, truncated\\?\\): layer [0-9]+ \\(con\\) at byte " +
                         std::to_string(at) +
                         ": parameter tensor \\(9248 floats\\) needs 36992 bytes, 100 remain");
}

TEST_F(WeightsPrewalkTest, RefusesTrainingStateThatIsNotEmpty) {
  // The stream ends with the fc layer's params_grad, an empty tensor (the vendor's conversion
  // runs dlib's clean()); a header asking for 2^40 floats there.
  const std::string empty = Header(2, 0, 0, 0, 0);
  ASSERT_EQ(genuine_->substr(genuine_->size() - empty.size()), empty);
  const size_t at = genuine_->size() - empty.size();
  ExpectRefused(Spliced(at, empty.size(), Header(2, 1, 1, 1, 1LL << 40)),
                "weights: layer 1 \\(fc\\) at byte " + std::to_string(at) +
                    ": params_grad has 1099511627776 values, the architecture needs 0 "
                    "\\(0x0x0x0\\)");
}

TEST_F(WeightsPrewalkTest, RefusesAHugeStringLength) {
  // The stream opens with add_loss_layer's version (1) and the loss layer's version string.
  const std::string start = DlibInt(1) + DlibString("loss_metric_2");
  ASSERT_EQ(genuine_->substr(0, start.size()), start);
  ExpectRefused(Spliced(2, 2, DlibInt(1LL << 62)),
                "weights: layer 0 \\(loss_metric\\) at byte 2: version is a string of "
                "4611686018427387904 bytes, expected \"loss_metric_2\"");
}

TEST_F(WeightsPrewalkTest, RefusesAnIntegerControlByteDlibWouldMisread) {
  // 0x11: dlib ignores bits 0x70 and would read a 1-byte integer; nothing writes them.
  ExpectRefused(Spliced(0, 1, "\x11"),
                "weights: layer 0 \\(loss_metric\\) at byte 0: add_loss_layer version: not a "
                "4-byte signed integer \\(control byte 0x11\\)");
}

TEST_F(WeightsPrewalkTest, RefusesTrailingBytesAndAnEmptyStream) {
  ExpectRefused(*genuine_ + "x",
                "weights: 1 trailing bytes after the network \\(which ends at byte [0-9]+\\)");
  ExpectRefused("",
                "weights: the network ends early \\(0 bytes, truncated\\?\\): layer 0 "
                "\\(loss_metric\\) at byte 0: add_loss_layer version needs 1 bytes, 0 remain");
}

TEST_F(WeightsPrewalkTest, EveryPrefixOfTheHeadersIsRefused) {
  // Every cut inside the first layers' headers (up to the first 3x3 con's values) and a cut
  // before each of the last 400 bytes: refused as truncated, never accepted, never a crash.
  const size_t first_values = FirstConHeader() + kParamHeaderSize;
  for (size_t keep = 0; keep < genuine_->size(); ++keep) {
    if (keep > first_values && keep + 400 < genuine_->size()) continue;
    ASSERT_THAT(
        PrewalkFaceResNetWeights(std::string_view(*genuine_).substr(0, keep)),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("weights: the network ends early")))
        << keep;
  }
}

}  // namespace
}  // namespace fedface
