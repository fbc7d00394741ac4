#include "core/package/tfjs_weights.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "core/common/sha256.h"
#include "tests/support/test_env.h"
#include "tests/unit/package/package_test_helpers.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;
using ::fedface::testing::MakeTempDir;
using ::fedface::testing::Slurp;
using ::fedface::testing::Spit;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Float32Le(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  std::string out(4, '\0');
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((bits >> (8 * i)) & 0xff);
  return out;
}

// One uint8-quantized [2,3] tensor and one float32 [2] tensor.
constexpr char kSmallManifest[] = R"([{"paths": ["m.bin"], "weights": [
  {"name": "q", "shape": [2, 3], "dtype": "float32",
   "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.25}},
  {"name": "f", "shape": [2], "dtype": "float32"}]}])";

std::string SmallBin() {
  return std::string("\x00\x01\x02\x0a\x80\xff", 6) + Float32Le(3.5f) + Float32Le(-1e-3f);
}

TEST(TfjsWeightsTest, DequantizesUint8AndReadsLittleEndianFloat32) {
  const std::string bin = SmallBin();
  auto t = DecodeTfjsWeights(kSmallManifest, {bin}, "small.json");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].name, "q");
  EXPECT_THAT((*t)[0].shape, ElementsAre(2, 3));
  // byte * scale + min
  EXPECT_THAT((*t)[0].values, ElementsAre(-1.25f, -0.75f, -0.25f, 3.75f, 62.75f, 126.25f));
  EXPECT_EQ((*t)[1].name, "f");
  EXPECT_THAT((*t)[1].values, ElementsAre(3.5f, -1e-3f));
}

TEST(TfjsWeightsTest, RefusesTruncatedBin) {
  const std::string bin = SmallBin().substr(0, 13);
  auto t = DecodeTfjsWeights(kSmallManifest, {bin}, "dir/small.json");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(t.status().message(),
            "dir/m.bin: truncated: tensor 'f' needs bytes [6, 14) but the file has 13");
}

TEST(TfjsWeightsTest, RefusesBinLongerThanTheManifestSays) {
  const std::string bin = SmallBin() + "xx";
  auto t = DecodeTfjsWeights(kSmallManifest, {bin}, "small.json");
  EXPECT_THAT(t.status().message(), HasSubstr("m.bin: 2 bytes after the last tensor"));
}

TEST(TfjsWeightsTest, RefusesUnknownDtypes) {
  std::string manifest = kSmallManifest;
  manifest.replace(manifest.find("\"float32\"}"), 9, "\"int32\"");
  auto t = DecodeTfjsWeights(manifest, {SmallBin()}, "small.json");
  EXPECT_EQ(t.status().message(), "small.json: tensor 'f': unsupported dtype 'int32'");

  std::string q16 = kSmallManifest;
  q16.replace(q16.find("\"uint8\""), 7, "\"uint16\"");
  auto t16 = DecodeTfjsWeights(q16, {SmallBin()}, "small.json");
  EXPECT_EQ(t16.status().message(),
            "small.json: tensor 'q': unsupported quantization dtype 'uint16'");
}

TEST(TfjsWeightsTest, RefusesShapesThatDisagreeWithTheData) {
  std::string manifest = kSmallManifest;
  manifest.replace(manifest.find("[2, 3]"), 6, "[2, 4]");
  auto t = DecodeTfjsWeights(manifest, {SmallBin()}, "small.json");
  EXPECT_THAT(t.status().message(), HasSubstr("truncated: tensor 'f'"));

  std::string negative = kSmallManifest;
  negative.replace(negative.find("[2, 3]"), 6, "[2, -3]");
  EXPECT_THAT(DecodeTfjsWeights(negative, {SmallBin()}, "s.json").status().message(),
              HasSubstr("tensor 'q': bad shape [2,-3]"));

  std::string huge = kSmallManifest;
  huge.replace(huge.find("[2, 3]"), 6, "[65536, 65536]");
  EXPECT_THAT(DecodeTfjsWeights(huge, {SmallBin()}, "s.json").status().message(),
              HasSubstr("is too large"));
}

TEST(TfjsWeightsTest, RefusesMalformedManifests) {
  EXPECT_EQ(DecodeTfjsWeights("{", {}, "m.json").status().message(), "m.json: not valid JSON");
  EXPECT_THAT(DecodeTfjsWeights("{}", {}, "m.json").status().message(),
              HasSubstr("expected a non-empty list of weight groups"));
  EXPECT_THAT(DecodeTfjsWeights(R"([{"paths": ["../x.bin"], "weights": []}])", {""}, "m.json")
                  .status()
                  .message(),
              HasSubstr("bad path \"../x.bin\""));
  EXPECT_THAT(DecodeTfjsWeights(kSmallManifest, {}, "m.json").status().message(),
              HasSubstr("1 weight groups but 0 binary blobs"));
}

TEST(TfjsWeightsTest, ReadsFolderAndNamesTheTruncatedBinFile) {
  const std::string dir = MakeTempDir("tfjs");
  fs::create_directory(dir + "/model");
  Spit(dir + "/model/" + kTfjsRecognitionManifest, kSmallManifest);
  Spit(dir + "/model/m.bin", SmallBin());
  auto ok = ReadTfjsRecognitionWeights(dir);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->tensors.size(), 2u);
  EXPECT_EQ(ok->manifest_sha256, Sha256Hex(kSmallManifest));
  EXPECT_EQ(ok->bin_sha256, Sha256Hex(SmallBin()));
  EXPECT_EQ(ok->manifest_path, dir + "/model/" + kTfjsRecognitionManifest);

  Spit(dir + "/model/m.bin", SmallBin().substr(0, 5));
  auto truncated = ReadTfjsRecognitionWeights(dir);
  EXPECT_EQ(truncated.status().message(),
            dir + "/model/m.bin: truncated: tensor 'q' needs bytes [0, 6) but the file has 5");

  fs::remove(dir + "/model/m.bin");
  EXPECT_THAT(ReadTfjsRecognitionWeights(dir).status().message(),
              HasSubstr(dir + "/model/m.bin: no such file"));
  EXPECT_THAT(ReadTfjsRecognitionWeights(dir + "/model/nothing").status().message(),
              HasSubstr("no face_recognition_model-weights_manifest.json"));
}

// face-api 1.7.15's real weights. Expected values were computed independently with python3
// (json + struct) from the same manifest and .bin: byte*scale+min in double, then float32.
TEST(TfjsWeightsTest, ReadsTheReal117FaceApiTensors) {
  const std::string faceapi = fedface::testing::FaceApiDir();
  FEDFACE_SKIP_IF_MISSING(faceapi, "face-api weights (scripts/fetch_model.sh)");
  auto w = ReadTfjsRecognitionWeights(faceapi);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->tensors.size(), 117u);
  const auto& first = w->tensors[0];
  EXPECT_EQ(first.name, "conv32_down/conv/filters");
  EXPECT_THAT(first.shape, ElementsAre(7, 7, 3, 32));
  ASSERT_EQ(first.values.size(), 7u * 7 * 3 * 32);
  EXPECT_FLOAT_EQ(first.values[0], static_cast<float>(-0.02945963752036001));
  EXPECT_FLOAT_EQ(first.values[1], static_cast<float>(-0.008417039291531425));
  EXPECT_FLOAT_EQ(first.values[2], static_cast<float>(0.0068388444243693));
  EXPECT_FLOAT_EQ(first.values.back(), static_cast<float>(0.005786714512927865));
  EXPECT_FLOAT_EQ(w->tensors[1].values[0], static_cast<float>(1.948432570012909e-05));

  // The first float32 (unquantized) tensor.
  const auto& raw = w->tensors[28];
  EXPECT_EQ(raw.name, "conv64_down/conv1/conv/filters");
  EXPECT_FLOAT_EQ(raw.values[0], static_cast<float>(-0.004492271691560745));
  EXPECT_FLOAT_EQ(raw.values[2], static_cast<float>(-0.0002000086533371359));
  EXPECT_FLOAT_EQ(raw.values.back(), static_cast<float>(0.001856982707977295));

  const auto& fc = w->tensors.back();
  EXPECT_EQ(fc.name, "fc");
  EXPECT_THAT(fc.shape, ElementsAre(256, 128));
  EXPECT_FLOAT_EQ(fc.values[0], static_cast<float>(-0.006796070319764758));
  EXPECT_FLOAT_EQ(fc.values.back(), static_cast<float>(0.00643838240819819));

  EXPECT_EQ(w->manifest_sha256, *Sha256HexOfFile(w->manifest_path));
  EXPECT_EQ(w->bin_sha256, *Sha256HexOfFile(faceapi + "/model/face_recognition_model.bin"));
}

}  // namespace
}  // namespace fedface
