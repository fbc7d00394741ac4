// Writer + verifier on fake weights: the package format, signatures and every refusal. The real
// network's self-test is in package_selftest_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <string>

#include "core/common/sha256.h"
#include "core/package/package_verifier.h"
#include "core/package/package_writer.h"
#include "tests/support/test_env.h"
#include "tests/unit/package/package_test_helpers.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;
using ::fedface::testing::EditAndResign;
using ::fedface::testing::FakeWeights;
using ::fedface::testing::FlipByte;
using ::fedface::testing::MakeTempDir;
using ::fedface::testing::Slurp;
using ::fedface::testing::Spit;
using ::fedface::testing::TestChips;
using ::fedface::testing::TestFields;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class PackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = Ed25519PrivateKey::Generate();
    ASSERT_TRUE(k.ok());
    key_ = std::make_unique<Ed25519PrivateKey>(*std::move(k));
    root_ = MakeTempDir("package");
    dir_ = root_ + "/pkg";
    auto m = WriteModelPackage(dir_, TestFields(), FakeWeights(), TestChips(), *key_);
    ASSERT_TRUE(m.ok()) << m.status();
    manifest_ = *m;
  }

  absl::StatusOr<VerifiedPackage> Verify() { return VerifyModelPackage(dir_, key_->public_key()); }

  std::unique_ptr<Ed25519PrivateKey> key_;
  std::string root_, dir_;
  ModelManifest manifest_;
};

TEST_F(PackageTest, WrittenPackageVerifiesAndReturnsWhatWasPackaged) {
  EXPECT_TRUE(fs::is_regular_file(dir_ + "/manifest.json"));
  EXPECT_EQ(fs::file_size(dir_ + "/manifest.sig"), 64u);
  EXPECT_TRUE(fs::is_regular_file(dir_ + "/selftest/chip0.png"));
  EXPECT_TRUE(fs::is_regular_file(dir_ + "/selftest/chip1.png"));

  auto p = Verify();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->manifest, manifest_);
  EXPECT_EQ(p->manifest_bytes, Slurp(dir_ + "/manifest.json"));
  EXPECT_EQ(p->weights, FakeWeights());
  EXPECT_EQ(p->manifest.weights.sha256, Sha256Hex(FakeWeights()));
  EXPECT_EQ(p->manifest.weights.bytes, FakeWeights().size());
  EXPECT_EQ(p->manifest.signing_key_id, key_->key_id());
  EXPECT_EQ(p->manifest.version, "1.2.3");
  EXPECT_EQ(p->manifest.created_at, "2024-05-01T12:00:00Z");
  ASSERT_EQ(p->chips.size(), 2u);
  const auto chips = TestChips();
  for (size_t i = 0; i < chips.size(); ++i) {
    EXPECT_EQ(cv::norm(p->chips[i], chips[i].chip_rgb, cv::NORM_INF), 0.0) << "chip " << i;
    EXPECT_EQ(p->manifest.self_test.cases[i].embedding, chips[i].embedding);
  }
}

TEST_F(PackageTest, ChipsAreStoredAsRgbImagesOnDisk) {
  // Any PNG reader must see the chip's true colours: OpenCV reads BGR, so pixel (0,0) of chip 0,
  // RGB (200, 0, 0), reads back as B=0 G=0 R=200.
  cv::Mat bgr = cv::imread(dir_ + "/selftest/chip0.png", cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(bgr.empty());
  ASSERT_EQ(bgr.type(), CV_8UC3);
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 200));
  EXPECT_EQ(bgr.at<cv::Vec3b>(1, 5), cv::Vec3b(7, 5, 200));
}

TEST_F(PackageTest, SameInputsGiveTheSameManifestBytes) {
  auto again = WriteModelPackage(root_ + "/pkg2", TestFields(), FakeWeights(), TestChips(), *key_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Slurp(root_ + "/pkg2/manifest.json"), Slurp(dir_ + "/manifest.json"));
}

TEST_F(PackageTest, WritesIntoNewParentFoldersAndAcceptsATrailingSlash) {
  const std::string dir = root_ + "/releases/1.2.3/";
  auto m = WriteModelPackage(dir, TestFields(), FakeWeights(), TestChips(), *key_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(VerifyModelPackage(root_ + "/releases/1.2.3", key_->public_key()).ok());
}

TEST_F(PackageTest, RefusesToOverwriteAnExistingPackage) {
  const std::string before = Slurp(dir_ + "/manifest.json");
  auto fields = TestFields();
  fields.version = "2.0.0";
  auto again = WriteModelPackage(dir_, fields, FakeWeights(), TestChips(), *key_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr("already exists"));
  EXPECT_EQ(Slurp(dir_ + "/manifest.json"), before);

  fs::create_directory(root_ + "/empty");  // even an empty folder is not replaced
  auto onto_empty = WriteModelPackage(root_ + "/empty", fields, FakeWeights(), TestChips(), *key_);
  EXPECT_EQ(onto_empty.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(fs::is_empty(root_ + "/empty"));
}

TEST_F(PackageTest, LeavesNoTemporaryFolderBehind) {
  auto bad_chip = TestChips();
  bad_chip[1].chip_rgb = cv::Mat(100, 150, CV_8UC3, cv::Scalar(1, 2, 3));
  auto failed = WriteModelPackage(root_ + "/bad", TestFields(), FakeWeights(), bad_chip, *key_);
  EXPECT_THAT(failed.status().message(), HasSubstr("self-test chip 1: expected 150x150"));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root_)) names.push_back(e.path().filename());
  EXPECT_THAT(names, ::testing::ElementsAre("pkg"));
}

TEST_F(PackageTest, WriterRefusesInvalidInputs) {
  auto fields = TestFields();
  fields.version = "one";
  EXPECT_THAT(
      WriteModelPackage(root_ + "/a", fields, FakeWeights(), TestChips(), *key_).status().message(),
      HasSubstr("version"));
  EXPECT_FALSE(WriteModelPackage(root_ + "/b", TestFields(), "", TestChips(), *key_).ok());
  EXPECT_FALSE(WriteModelPackage(root_ + "/c", TestFields(), FakeWeights(), {}, *key_).ok());
  auto gray = TestChips();
  gray[0].chip_rgb = cv::Mat(150, 150, CV_8UC1, cv::Scalar(9));
  EXPECT_FALSE(WriteModelPackage(root_ + "/d", TestFields(), FakeWeights(), gray, *key_).ok());
  EXPECT_FALSE(
      WriteModelPackage(root_ + "/e", TestFields(), FakeWeights(), TestChips(17), *key_).ok());
  EXPECT_FALSE(fs::exists(root_ + "/a") || fs::exists(root_ + "/b") || fs::exists(root_ + "/c") ||
               fs::exists(root_ + "/d") || fs::exists(root_ + "/e"));
}

TEST_F(PackageTest, RefusesOneFlippedByteInWeights) {
  FlipByte(dir_ + "/weights.dat", 1000);
  auto p = Verify();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(p.status().message()), StartsWith(dir_ + "/weights.dat: sha256 "));
  EXPECT_THAT(p.status().message(), HasSubstr("does not match the manifest's"));
}

TEST_F(PackageTest, RefusesOneFlippedByteInManifest) {
  const std::string text = Slurp(dir_ + "/manifest.json");
  FlipByte(dir_ + "/manifest.json", text.find("1.2.3"));  // "1.2.3" -> "0.2.3"
  auto p = Verify();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(p.status().message(),
            dir_ + "/manifest.json: signature does not verify against the pinned key (id " +
                key_->key_id() + "); the manifest or its signature was altered");
}

TEST_F(PackageTest, RefusesOneFlippedByteInAChip) {
  FlipByte(dir_ + "/selftest/chip1.png", 200);
  auto p = Verify();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(p.status().message()), StartsWith(dir_ + "/selftest/chip1.png: sha256 "));
}

TEST_F(PackageTest, RefusesOneFlippedByteInTheSignature) {
  FlipByte(dir_ + "/manifest.sig", 7);
  EXPECT_THAT(Verify().status().message(), HasSubstr("signature does not verify"));
}

TEST_F(PackageTest, RefusesPackageSignedByAnotherKey) {
  auto other = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  auto p = VerifyModelPackage(dir_, other->public_key());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(p.status().message(), dir_ + ": package signed by another key (id " + key_->key_id() +
                                      ", pinned " + other->key_id() + ")");

  // A package re-signed by an attacker's key, claiming to be from the vendor's key id, still fails.
  EditAndResign(dir_, *other, [&](nlohmann::json& j) { j["version"] = "6.6.6"; });
  auto forged = Verify();
  EXPECT_EQ(forged.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(forged.status().message(), HasSubstr("signature does not verify"));
}

TEST_F(PackageTest, RefusesManifestThatNamesAnotherSigningKey) {
  EditAndResign(dir_, *key_, [](nlohmann::json& j) { j["signing_key_id"] = "0000000000000000"; });
  EXPECT_THAT(Verify().status().message(),
              HasSubstr("names signing key 0000000000000000 but was signed by the pinned key"));
}

TEST_F(PackageTest, RefusesEachMissingFile) {
  struct Case {
    const char* file;
    const char* message;
  };
  for (const Case& c : {Case{"manifest.json", "manifest.json: missing manifest"},
                        Case{"manifest.sig", "manifest.sig: missing signature"},
                        Case{"weights.dat", "weights.dat: missing weights"},
                        Case{"selftest/chip1.png", "selftest/chip1.png: missing self-test chip"}}) {
    const std::string copy = MakeTempDir("package-missing") + "/pkg";
    fs::copy(dir_, copy, fs::copy_options::recursive);
    fs::remove(copy + "/" + c.file);
    auto p = VerifyModelPackage(copy, key_->public_key());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound) << c.file;
    EXPECT_EQ(p.status().message(), copy + "/" + c.message);
  }
  EXPECT_EQ(VerifyModelPackage(root_ + "/nope", key_->public_key()).status().message(),
            root_ + "/nope: model package folder not found");
}

TEST_F(PackageTest, RefusesSignedManifestWithAnUnknownKey) {
  EditAndResign(dir_, *key_, [](nlohmann::json& j) { j["run_script"] = "rm -rf /"; });
  auto p = Verify();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            dir_ + "/manifest.json: manifest: (top level): unknown key 'run_script'");
}

TEST_F(PackageTest, RefusesTruncatedWeightsAndSignature) {
  std::string w = Slurp(dir_ + "/weights.dat");
  Spit(dir_ + "/weights.dat", w.substr(0, w.size() - 1));
  EXPECT_THAT(Verify().status().message(),
              HasSubstr("weights.dat: 4095 bytes, the manifest says 4096"));
  Spit(dir_ + "/weights.dat", w);
  ASSERT_TRUE(Verify().ok());
  Spit(dir_ + "/manifest.sig", Slurp(dir_ + "/manifest.sig").substr(0, 63));
  EXPECT_THAT(Verify().status().message(), HasSubstr("manifest.sig: 63 bytes, expected 64"));
}

TEST_F(PackageTest, RefusesOversizedFilesBeforeReadingThem) {
  // Sparse files: the size check must fire on the size alone.
  ASSERT_EQ(::truncate((dir_ + "/weights.dat").c_str(), kMaxWeightsBytes + 1), 0);
  auto w = Verify();
  EXPECT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(w.status().message(), HasSubstr("weights.dat: weights of 268435457 bytes exceeds"));
  ASSERT_EQ(::truncate((dir_ + "/weights.dat").c_str(), 10), 0);

  const std::string manifest = Slurp(dir_ + "/manifest.json");
  ASSERT_EQ(::truncate((dir_ + "/manifest.json").c_str(), kMaxManifestBytes + 1), 0);
  EXPECT_THAT(Verify().status().message(),
              HasSubstr("manifest.json: manifest of 1048577 bytes exceeds"));
  Spit(dir_ + "/manifest.json", manifest);

  Spit(dir_ + "/manifest.sig", std::string(65, 'x'));
  EXPECT_THAT(Verify().status().message(), HasSubstr("manifest.sig: signature of 65 bytes"));
}

TEST_F(PackageTest, RefusesOversizedChipEvenWhenSigned) {
  const std::string big(kMaxChipBytes + 1, 'p');
  Spit(dir_ + "/selftest/chip0.png", big);
  EditAndResign(dir_, *key_, [&](nlohmann::json& j) {
    j["self_test"]["cases"][0]["chip_sha256"] = Sha256Hex(big);
  });
  auto p = Verify();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(p.status().message(), HasSubstr("selftest/chip0.png: 1048577 bytes exceeds"));
}

TEST_F(PackageTest, RefusesSignedChipThatIsNotAChipSizedPng) {
  cv::Mat small(100, 100, CV_8UC3, cv::Scalar(1, 2, 3));
  std::vector<uchar> png;
  ASSERT_TRUE(cv::imencode(".png", small, png));
  const std::string bytes(png.begin(), png.end());
  Spit(dir_ + "/selftest/chip0.png", bytes);
  EditAndResign(dir_, *key_, [&](nlohmann::json& j) {
    j["self_test"]["cases"][0]["chip_sha256"] = Sha256Hex(bytes);
  });
  EXPECT_THAT(Verify().status().message(), HasSubstr("chip0.png: not a 150x150 PNG"));
}

}  // namespace
}  // namespace fedface
