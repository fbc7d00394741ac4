// The fixture's real package (face-api weights converted by `model_vendor package`) against the
// real dlib network: load, self-test, and refusals that only the real network can show.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "core/engine/face_resnet_testing.h"
#include "core/package/package_verifier.h"
#include "core/package/package_writer.h"
#include "tests/support/test_env.h"
#include "tests/unit/package/package_test_helpers.h"

namespace fedface {
namespace {

using ::fedface::testing::CopyPackage;
using ::fedface::testing::EditAndResign;
using ::fedface::testing::MakeTempDir;
using ::fedface::testing::TestPackageDir;
using ::fedface::testing::TestVendorKey;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class PackageSelfTestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    package_ = TestPackageDir();
    FEDFACE_SKIP_IF_MISSING(package_, "signed test package (fixture_signed_package)");
    key_path_ = TestVendorKey();
    FEDFACE_SKIP_IF_MISSING(key_path_, "test vendor key");
  }
  std::string package_, key_path_;
};

TEST_F(PackageSelfTestTest, LoadsTheSignedPackageAndPassesItsSelfTest) {
  auto loaded = LoadVerifiedModel(package_, key_path_ + ".pub");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_NE(loaded->net, nullptr);
  EXPECT_EQ(loaded->manifest.architecture, kArchitectureDlibFaceResnetV1);
  EXPECT_GE(loaded->manifest.self_test.cases.size(), 1u);
  EXPECT_LE(loaded->self_test_max_distance, loaded->manifest.self_test.tolerance);
  std::cout << "self-test: " << loaded->manifest.self_test.cases.size() << " chips, max distance "
            << loaded->self_test_max_distance << " (tolerance "
            << loaded->manifest.self_test.tolerance << ")\n";

  // The chips are real faces: distinct people embed far apart, so the self-test can tell
  // a wrong network from a right one.
  auto verified = VerifyModelPackage(package_, *Ed25519PublicKey::LoadPem(key_path_ + ".pub"));
  ASSERT_TRUE(verified.ok());
  const auto& cases = verified->manifest.self_test.cases;
  for (size_t i = 1; i < cases.size(); ++i) {
    EXPECT_GT(EuclideanDistance(cases[0].embedding, cases[i].embedding), 0.1f);
  }
}

TEST_F(PackageSelfTestTest, RefusesSignedPackageWhoseStoredEmbeddingsAreWrong) {
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string copy = CopyPackage(package_, MakeTempDir("selftest-wrong"));
  EditAndResign(copy, *key, [](nlohmann::json& j) {
    double v = j["self_test"]["cases"][0]["embedding"][3].get<double>();
    j["self_test"]["cases"][0]["embedding"][3] = v + 0.01;
  });
  auto loaded = LoadVerifiedModel(copy, key->public_key());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(loaded.status().message(), HasSubstr("self-test failed: selftest/chip0.png embeds"));
  EXPECT_THAT(loaded.status().message(), HasSubstr("from the packaged embedding (tolerance"));
}

TEST_F(PackageSelfTestTest, RefusesSignedWeightsOfAnotherNetwork) {
  // Validly signed weights that are a real dlib network but with one layer's weights perturbed:
  // only the self-test can catch this.
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok());
  auto verified = VerifyModelPackage(package_, key->public_key());
  ASSERT_TRUE(verified.ok()) << verified.status();
  std::string weights = verified->weights;
  // Flip a low mantissa bit in many floats near the end (the fc layer's values, which end about
  // 110 bytes before the stream does: what follows them is headers the pre-walk reads strictly).
  for (size_t i = weights.size() - 40000; i < weights.size() - 200; i += 97) weights[i] ^= 0x10;
  auto net = FaceResNet::FromSerialized(weights);
  if (!net.ok()) FEDFACE_SKIP_OR_FAIL("perturbed weights no longer deserialize: " << net.status());
  float max_distance = 0.f;
  absl::Status st = RunSelfTest(*verified, **net, &max_distance);
  EXPECT_FALSE(st.ok());
  EXPECT_GT(max_distance, verified->manifest.self_test.tolerance);
}

TEST_F(PackageSelfTestTest, RefusesSignedWeightsOfAnotherShapeBeforeRunningThem) {
  // The vendor's own key signs a well-formed dlib network whose first 3x3 con layer has 32 values
  // too few: refused when the weights are checked against the architecture, in one line naming
  // the layer, before the self-test (or anything else) runs the network.
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok()) << key.status();
  auto verified = VerifyModelPackage(package_, key->public_key());
  ASSERT_TRUE(verified.ok()) << verified.status();
  auto misshaped = testing_only::MisshapedSerialization(verified->weights,
                                                        testing_only::Misshape::kConvMissingValues);
  ASSERT_TRUE(misshaped.ok()) << misshaped.status();
  std::vector<SelfTestChip> chips;
  for (size_t i = 0; i < verified->chips.size(); ++i) {
    chips.push_back({verified->chips[i], verified->manifest.self_test.cases[i].embedding});
  }
  const std::string dir = MakeTempDir("selftest-misshaped") + "/pkg";
  ASSERT_TRUE(WriteModelPackage(dir, fedface::testing::TestFields(), *misshaped, chips, *key).ok());
  ASSERT_TRUE(VerifyModelPackage(dir, key->public_key()).ok());  // the signature is fine

  auto loaded = LoadVerifiedModel(dir, key->public_key());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(loaded.status().message());
  EXPECT_THAT(message, StartsWith(dir + "/weights.dat: weights: layer "));
  EXPECT_THAT(message, ::testing::ContainsRegex(" \\(con\\) at byte [0-9]+: parameter tensor has "
                                                "9216 values, the architecture needs 9248"));
  EXPECT_THAT(message, Not(HasSubstr("\n")));
}

TEST_F(PackageSelfTestTest, RefusesSignedWeightsThatAreNotADlibNetwork) {
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok());
  auto verified = VerifyModelPackage(package_, key->public_key());
  ASSERT_TRUE(verified.ok());
  std::vector<SelfTestChip> chips;
  for (size_t i = 0; i < verified->chips.size(); ++i) {
    chips.push_back({verified->chips[i], verified->manifest.self_test.cases[i].embedding});
  }
  const std::string dir = MakeTempDir("selftest-garbage") + "/pkg";
  PackageFields fields = fedface::testing::TestFields();
  ASSERT_TRUE(WriteModelPackage(dir, fields, std::string(5000, 'z'), chips, *key).ok());
  auto loaded = LoadVerifiedModel(dir, key->public_key());
  EXPECT_FALSE(loaded.ok());
  EXPECT_THAT(loaded.status().message(), HasSubstr(dir + "/weights.dat: "));
}

// ---- the int8 calibration: signed, checked, refused clearly ------------------------------------

TEST_F(PackageSelfTestTest, TheSignedInt8CalibrationLoadsTheInt8BackendAndPassesItsSelfTest) {
  auto loaded = LoadVerifiedModel(package_, key_path_ + ".pub", EmbeddingBackend::kOneDnnInt8);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->manifest.int8_calibration.has_value());
  const Int8Calibration& c = *loaded->manifest.int8_calibration;
  EXPECT_EQ(c.activation_scales.size(), static_cast<size_t>(kInt8ActivationScaleCount));
  EXPECT_GE(c.chips, 15);  // every face of the npm sample photos
  EXPECT_LE(loaded->self_test_max_distance, c.self_test_tolerance);
  std::cout << "onednn-int8 self-test: max distance " << loaded->self_test_max_distance
            << " (tolerance " << c.self_test_tolerance << ", calibrated on " << c.chips
            << " faces)\n";
}

TEST_F(PackageSelfTestTest, RefusesATamperedInt8CalibrationOnEveryBackend) {
  const std::string copy = CopyPackage(package_, MakeTempDir("int8-tampered"));
  nlohmann::json j = nlohmann::json::parse(fedface::testing::Slurp(copy + "/manifest.json"));
  ASSERT_TRUE(j.contains("int8_calibration"));
  j["int8_calibration"]["activation_scales"][5] =
      j["int8_calibration"]["activation_scales"][5].get<double>() * 4;
  fedface::testing::Spit(copy + "/manifest.json", j.dump(2) + "\n");  // not re-signed
  for (EmbeddingBackend backend :
       {EmbeddingBackend::kDlib, EmbeddingBackend::kOneDnn, EmbeddingBackend::kOneDnnInt8}) {
    auto loaded = LoadVerifiedModel(copy, key_path_ + ".pub", backend);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(loaded.status().message()),
                HasSubstr("manifest.json: signature does not verify against the pinned key"));
  }
}

TEST_F(PackageSelfTestTest, RefusesSignedInt8CalibrationsItCannotUseNamingTheField) {
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok()) << key.status();
  struct Case {
    const char* what;
    std::function<void(nlohmann::json&)> edit;
    const char* message;
  };
  const Case cases[] = {
      {"zero", [](auto& c) { c["activation_scales"][3] = 0; },
       "int8_calibration.activation_scales[3]: 0 is not a finite number in [1e-06, 1000]"},
      {"negative", [](auto& c) { c["activation_scales"][0] = -0.5; },
       "int8_calibration.activation_scales[0]: -0.5 is not"},
      {"huge", [](auto& c) { c["activation_scales"][28] = 1e300; },
       "int8_calibration.activation_scales[28]: 1e+300 is not"},
      {"a string", [](auto& c) { c["activation_scales"][7] = "0.1"; },
       "int8_calibration.activation_scales: element 7 is not a number"},
      {"null (what JSON makes of NaN)", [](auto& c) { c["activation_scales"][2] = nullptr; },
       "int8_calibration.activation_scales: element 2 is not a number"},
      {"28 scales", [](auto& c) { c["activation_scales"].erase(0); },
       "int8_calibration.activation_scales: expected 29 numbers, got 28"},
      {"1000 scales", [](auto& c) { c["activation_scales"] = std::vector<double>(1000, 0.05); },
       "expected 29 numbers, got 1000"},
      {"no scales", [](auto& c) { c.erase("activation_scales"); },
       "int8_calibration: missing key 'activation_scales'"},
      {"zero points", [](auto& c) { c["zero_points"] = std::vector<int>(29, 0); },
       "int8_calibration: unknown key 'zero_points'"},
      {"chips 0", [](auto& c) { c["chips"] = 0; }, "int8_calibration.chips: 0 is outside"},
      {"tolerance 0.5", [](auto& c) { c["self_test_tolerance"] = 0.5; },
       "int8_calibration.self_test_tolerance: 0.5 is outside (0, 0.1]"},
  };
  for (const Case& c : cases) {
    const std::string copy = CopyPackage(package_, MakeTempDir("int8-crafted"));
    EditAndResign(copy, *key, [&](nlohmann::json& j) { c.edit(j["int8_calibration"]); });
    for (EmbeddingBackend backend : {EmbeddingBackend::kDlib, EmbeddingBackend::kOneDnnInt8}) {
      auto loaded = LoadVerifiedModel(copy, key->public_key(), backend);
      EXPECT_EQ(loaded.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
      EXPECT_THAT(std::string(loaded.status().message()), StartsWith(copy + "/manifest.json: "))
          << c.what;
      EXPECT_THAT(std::string(loaded.status().message()), HasSubstr(c.message)) << c.what;
      EXPECT_THAT(std::string(loaded.status().message()), Not(HasSubstr("\n"))) << c.what;
    }
  }
}

TEST_F(PackageSelfTestTest, APackageWithoutInt8CalibrationLoadsOnDlibAndOneDnnOnly) {
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string copy = CopyPackage(package_, MakeTempDir("int8-absent"));
  EditAndResign(copy, *key, [](nlohmann::json& j) { j.erase("int8_calibration"); });
  EXPECT_TRUE(LoadVerifiedModel(copy, key->public_key(), EmbeddingBackend::kDlib).ok());
  EXPECT_TRUE(LoadVerifiedModel(copy, key->public_key(), EmbeddingBackend::kOneDnn).ok());
  auto int8 = LoadVerifiedModel(copy, key->public_key(), EmbeddingBackend::kOneDnnInt8);
  EXPECT_EQ(int8.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(int8.status().message()),
              StartsWith(copy + "/manifest.json: backend onednn-int8: the package has no int8 "
                                "calibration"));
}

TEST_F(PackageSelfTestTest, ASignedCalibrationThatSaturatesEverythingFailsOnlyTheInt8SelfTest) {
  // In range, so accepted, but every activation saturates: the descriptors collapse (the
  // vendor's own loss), the int8 self-test refuses the package; dlib is unaffected.
  auto key = Ed25519PrivateKey::LoadPem(key_path_);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string copy = CopyPackage(package_, MakeTempDir("int8-saturating"));
  EditAndResign(copy, *key, [](nlohmann::json& j) {
    j["int8_calibration"]["activation_scales"] =
        std::vector<double>(kInt8ActivationScaleCount, kMinInt8ActivationScale);
  });
  EXPECT_TRUE(LoadVerifiedModel(copy, key->public_key(), EmbeddingBackend::kDlib).ok());
  auto int8 = LoadVerifiedModel(copy, key->public_key(), EmbeddingBackend::kOneDnnInt8);
  EXPECT_EQ(int8.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(int8.status().message()), HasSubstr("self-test failed: selftest/chip"));
}

}  // namespace
}  // namespace fedface
