#include "core/package/model_manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

namespace fedface {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

ModelManifest ValidManifest() {
  ModelManifest m;
  m.model_id = "dlib-face-resnet";
  m.version = "1.0.0";
  m.weights.bytes = 22000000;
  m.weights.sha256 = std::string(64, 'c');
  for (int c = 0; c < 2; ++c) {
    SelfTestCase tc;
    tc.chip = "selftest/chip" + std::to_string(c) + ".png";
    tc.chip_sha256 = std::string(64, 'd');
    for (int i = 0; i < kEmbeddingDim; ++i) tc.embedding[i] = 0.1f * i / 7.f - c * 0.03f;
    m.self_test.cases.push_back(tc);
  }
  m.source = {"@vladmandic/face-api@1.7.15", std::string(64, 'a'), std::string(64, 'b')};
  m.signing_key_id = "0123456789abcdef";
  m.created_at = "2024-05-01T12:00:00Z";
  return m;
}

// Parses the JSON of a valid manifest after `edit`.
absl::StatusOr<ModelManifest> ParseEdited(const std::function<void(Json&)>& edit) {
  Json j = Json::parse(SerializeManifest(ValidManifest()));
  edit(j);
  return ParseManifest(j.dump(), "pkg/manifest.json");
}

TEST(ModelManifestTest, SerializationIsDeterministicAndRoundTripsExactly) {
  const ModelManifest m = ValidManifest();
  ASSERT_TRUE(ValidateManifest(m).ok()) << ValidateManifest(m);
  const std::string a = SerializeManifest(m);
  const std::string b = SerializeManifest(ValidManifest());
  EXPECT_EQ(a, b);
  auto parsed = ParseManifest(a, "manifest.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, m);  // every float of every embedding comes back bit-exact
  EXPECT_EQ(SerializeManifest(*parsed), a);
  EXPECT_THAT(a, HasSubstr("\"format\": \"fedface-model-package/1\""));
  EXPECT_THAT(a, HasSubstr("\"mean_rgb\": [\n      122.782,\n      117.001,\n      104.298"));
  EXPECT_EQ(a.back(), '\n');
}

TEST(ModelManifestTest, TheOptionalInt8CalibrationRoundTripsExactly) {
  ModelManifest m = ValidManifest();
  Int8Calibration c;
  for (int i = 0; i < kInt8ActivationScaleCount; ++i)
    c.activation_scales.push_back(0.01 + i / 97.0);
  c.chips = 19;
  c.self_test_tolerance = 0.031;
  m.int8_calibration = c;
  ASSERT_TRUE(ValidateManifest(m).ok()) << ValidateManifest(m);
  const std::string text = SerializeManifest(m);
  auto parsed = ParseManifest(text, "manifest.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, m);
  EXPECT_EQ(SerializeManifest(*parsed), text);
  EXPECT_THAT(text, HasSubstr("\"int8_calibration\": {"));
  // Absent is absent: the manifest of a package without it has no such key.
  EXPECT_THAT(SerializeManifest(ValidManifest()), Not(HasSubstr("int8_calibration")));
}

TEST(ModelManifestTest, RefusesUnknownKeysAtAnyLevel) {
  auto top = ParseEdited([](Json& j) { j["extra"] = 1; });
  EXPECT_EQ(top.status().message(),
            "pkg/manifest.json: manifest: (top level): unknown key 'extra'");
  auto nested = ParseEdited([](Json& j) { j["input"]["colour_space"] = "sRGB"; });
  EXPECT_EQ(nested.status().message(),
            "pkg/manifest.json: manifest: input: unknown key 'colour_space'");
  auto in_case = ParseEdited([](Json& j) { j["self_test"]["cases"][1]["note"] = "x"; });
  EXPECT_THAT(in_case.status().message(), HasSubstr("self_test.cases[1]: unknown key 'note'"));
}

TEST(ModelManifestTest, RefusesMissingKeys) {
  auto r = ParseEdited([](Json& j) { j["weights"].erase("sha256"); });
  EXPECT_THAT(r.status().message(), HasSubstr("weights: missing key 'sha256'"));
  auto top = ParseEdited([](Json& j) { j.erase("signing_key_id"); });
  EXPECT_THAT(top.status().message(), HasSubstr("missing key 'signing_key_id'"));
}

TEST(ModelManifestTest, RefusesWrongTypes) {
  auto width = ParseEdited([](Json& j) { j["input"]["width"] = "150"; });
  EXPECT_THAT(width.status().message(), HasSubstr("input.width: expected an integer, got string"));
  auto frac = ParseEdited([](Json& j) { j["input"]["width"] = 150.5; });
  EXPECT_THAT(frac.status().message(), HasSubstr("input.width: expected an integer"));
  auto version = ParseEdited([](Json& j) { j["version"] = 1; });
  EXPECT_THAT(version.status().message(), HasSubstr("version: expected a string, got number"));
  auto input = ParseEdited([](Json& j) { j["input"] = Json::array(); });
  EXPECT_THAT(input.status().message(), HasSubstr("input: expected an object, got array"));
  auto emb = ParseEdited([](Json& j) { j["self_test"]["cases"][0]["embedding"][5] = "0.1"; });
  EXPECT_THAT(emb.status().message(), HasSubstr("element 5 is not a number"));
  auto bytes = ParseEdited([](Json& j) { j["weights"]["bytes"] = -5; });
  EXPECT_FALSE(bytes.ok());
}

TEST(ModelManifestTest, RefusesValuesTheEngineCannotHonour) {
  auto width = ParseEdited([](Json& j) { j["input"]["width"] = 160; });
  EXPECT_THAT(width.status().message(), HasSubstr("input.width: expected 150, got 160"));
  auto mean = ParseEdited([](Json& j) { j["input"]["mean_rgb"][0] = 122.78; });
  EXPECT_THAT(mean.status().message(), HasSubstr("input.mean_rgb"));
  auto bgr = ParseEdited([](Json& j) { j["input"]["channels"] = "BGR"; });
  EXPECT_THAT(bgr.status().message(), HasSubstr("input.channels"));
  auto metric = ParseEdited([](Json& j) { j["distance"]["metric"] = "cosine"; });
  EXPECT_THAT(metric.status().message(), HasSubstr("distance.metric"));
  auto arch = ParseEdited([](Json& j) { j["architecture"] = "arcface"; });
  EXPECT_THAT(arch.status().message(), HasSubstr("architecture: unsupported \"arcface\""));
  auto format = ParseEdited([](Json& j) { j["format"] = "fedface-model-package/2"; });
  EXPECT_THAT(format.status().message(), HasSubstr("format: expected"));
  auto threshold = ParseEdited([](Json& j) { j["distance"]["default_threshold"] = 0; });
  EXPECT_THAT(threshold.status().message(), HasSubstr("default_threshold"));
  auto dim = ParseEdited([](Json& j) { j["self_test"]["cases"][0]["embedding"].erase(0); });
  EXPECT_THAT(dim.status().message(), HasSubstr("expected 128 numbers, got 127"));
  auto key_id = ParseEdited([](Json& j) { j["signing_key_id"] = "0123456789ABCDEF"; });
  EXPECT_THAT(key_id.status().message(), HasSubstr("signing_key_id"));
  auto time = ParseEdited([](Json& j) { j["created_at"] = "2024-05-01 12:00:00"; });
  EXPECT_THAT(time.status().message(), HasSubstr("created_at"));
}

TEST(ModelManifestTest, RefusesChipPathsOutsideTheSelftestFolder) {
  for (const char* path : {"../weights.dat", "selftest/../../etc/passwd.png", "/tmp/chip.png",
                           "selftest/chip0.jpg", "selftest/sub/chip.png", "weights.dat"}) {
    auto r = ParseEdited([&](Json& j) { j["self_test"]["cases"][0]["chip"] = path; });
    EXPECT_THAT(r.status().message(), HasSubstr("self_test.cases[0].chip")) << path;
  }
  auto dup = ParseEdited(
      [](Json& j) { j["self_test"]["cases"][1]["chip"] = j["self_test"]["cases"][0]["chip"]; });
  EXPECT_THAT(dup.status().message(), HasSubstr("listed twice"));
  auto weights = ParseEdited([](Json& j) { j["weights"]["file"] = "../weights.dat"; });
  EXPECT_THAT(weights.status().message(), HasSubstr("weights.file"));
}

TEST(ModelManifestTest, ValidatesSemverLikeVersions) {
  for (const char* ok : {"0.0.1", "1.0.0", "10.20.30", "1.0.0-rc.1", "1.0.0+build.5",
                         "2.1.0-beta-2+exp.sha.5114f85"}) {
    EXPECT_TRUE(IsValidModelVersion(ok)) << ok;
  }
  for (const char* bad : {"", "1", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0+", "1.0.0 ",
                          "1.0.0-rc..1", "1.0.0/../x", "1.-1.0"}) {
    EXPECT_FALSE(IsValidModelVersion(bad)) << bad;
  }
  auto r = ParseEdited([](Json& j) { j["version"] = "latest"; });
  EXPECT_THAT(r.status().message(), HasSubstr("version: \"latest\" is not MAJOR.MINOR.PATCH"));
}

TEST(ModelManifestTest, RefusesDuplicateKeys) {
  std::string text = SerializeManifest(ValidManifest());
  // A second "version" inside the same object: two readers could disagree on which one counts.
  text.insert(text.find("\"version\""), "\"version\": \"9.9.9\",\n  ");
  auto r = ParseManifest(text, "m.json");
  EXPECT_EQ(r.status().message(), "m.json: duplicate key 'version'");
}

TEST(ModelManifestTest, RefusesInvalidJsonAndOversizedInput) {
  EXPECT_EQ(ParseManifest("{\"format\": ", "m.json").status().message(), "m.json: not valid JSON");
  EXPECT_THAT(ParseManifest("[]", "m.json").status().message(), HasSubstr("expected an object"));
  std::string huge(kMaxManifestBytes + 1, ' ');
  auto r = ParseManifest(huge, "m.json");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("exceeds the limit of 1048576"));
}

TEST(ModelManifestTest, RefusesTooManyOrNoSelfTestCases) {
  auto many = ParseEdited([](Json& j) {
    Json c = j["self_test"]["cases"][0];
    Json cases = Json::array();
    for (int i = 0; i < 17; ++i) {
      c["chip"] = "selftest/chip" + std::to_string(i) + ".png";
      cases.push_back(c);
    }
    j["self_test"]["cases"] = cases;
  });
  EXPECT_THAT(many.status().message(), HasSubstr("17 cases exceed the limit of 16"));
  auto none = ParseEdited([](Json& j) { j["self_test"]["cases"] = Json::array(); });
  EXPECT_THAT(none.status().message(), HasSubstr("self_test.cases: 0 cases"));
}

TEST(ModelManifestTest, RefusesHugeStringsAndDeepNestingWithoutCrashing) {
  const std::string long_text(500000, 'a');
  for (const char* field : {"model_id", "version", "created_at", "signing_key_id"}) {
    auto r = ParseEdited([&](Json& j) { j[field] = long_text; });
    EXPECT_THAT(r.status().message(), HasSubstr(field)) << field;
  }
  auto chip = ParseEdited([&](Json& j) { j["self_test"]["cases"][0]["chip"] = long_text; });
  EXPECT_THAT(chip.status().message(), HasSubstr("chip"));
  // 400k nested arrays inside the size limit: an error, not a stack overflow.
  const std::string deep = std::string(400000, '[') + std::string(400000, ']');
  EXPECT_FALSE(ParseManifest(deep, "deep.json").ok());
}

TEST(ModelManifestTest, RefusesWeightsAboveTheSizeLimit) {
  ModelManifest m = ValidManifest();
  m.weights.bytes = kMaxWeightsBytes + 1;
  EXPECT_THAT(ValidateManifest(m).message(), HasSubstr("weights.bytes"));
}

}  // namespace
}  // namespace fedface
