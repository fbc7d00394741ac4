// partner_node's local commands as a partner runs them: real processes, the real signed package,
// real photos, and every kind of bad input (each gives a one-line error naming the file).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "tests/support/child_process.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;
using testing::Env;
using testing::RunProcess;

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

size_t Lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

class LocalCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = testing::DatasetsDir();
    if (data_.empty()) FEDFACE_SKIP_OR_FAIL("../shared/datasets is absent; skipping test");
    if (testing::TestPackageDir().empty())
      FEDFACE_SKIP_OR_FAIL("test package absent; skipping test");
    tmp_ = testing::MakeTempDir("local-cli");
    package_ = tmp_ + "/package";
    fs::copy(testing::TestPackageDir(), package_, fs::copy_options::recursive);
    key_ = testing::TestVendorKey() + ".pub";
    oracle_ = data_ + "/face_recognition-tests/";
  }

  testing::ProcessResult Partner(std::vector<std::string> args) {
    args.insert(args.begin(), Env("FEDFACE_PARTNER_NODE"));
    return RunProcess(args);
  }

  testing::ProcessResult Compare(const std::string& a, const std::string& b) {
    return Partner({"compare", "--model", package_, "--vendor-key", key_, "--json", a, b});
  }

  std::string data_, tmp_, package_, key_, oracle_;
};

TEST_F(LocalCliTest, DetectPrintsBoxesAndSixtyEightLandmarksAsJson) {
  auto r = Partner({"detect", "--json", "--upsample", "1", oracle_ + "obama.jpg"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["images"][0]["faces"].size(), 1u);
  const auto& face = j["images"][0]["faces"][0];
  EXPECT_EQ(face["box"]["left"], 349);
  EXPECT_EQ(face["box"]["top"], 142);
  EXPECT_EQ(face["box"]["right"], 617);
  EXPECT_EQ(face["box"]["bottom"], 409);
  ASSERT_EQ(face["landmarks"].size(), 68u);
  EXPECT_EQ(face["landmarks"][10], nlohmann::json({552, 399}));
}

// --exact-parity is face_recognition's detector; the fast default finds the same face (its own
// box) and refuses a --min-face it would ignore.
TEST_F(LocalCliTest, DetectChoosesTheExactOrTheFastDetector) {
  auto box = [](const testing::ProcessResult& r) {
    return nlohmann::json::parse(r.out)["images"][0]["faces"][0]["box"];
  };
  auto exact = Partner({"detect", "--json", "--exact-parity", oracle_ + "obama.jpg"});
  ASSERT_EQ(exact.exit_code, 0) << exact.err;
  EXPECT_EQ(box(exact),
            nlohmann::json({{"left", 349}, {"top", 142}, {"right", 617}, {"bottom", 409}}));
  auto fast = Partner({"detect", "--json", "--min-face", "120", oracle_ + "obama.jpg"});
  ASSERT_EQ(fast.exit_code, 0) << fast.err;
  ASSERT_EQ(nlohmann::json::parse(fast.out)["images"][0]["faces"].size(), 1u);
  const cv::Rect e(349, 142, 617 - 349, 409 - 142);
  const cv::Rect f(box(fast)["left"], box(fast)["top"],
                   int(box(fast)["right"]) - int(box(fast)["left"]),
                   int(box(fast)["bottom"]) - int(box(fast)["top"]));
  EXPECT_GT(double((e & f).area()) / (e | f).area(), 0.6);
  auto both = Partner({"detect", "--exact-parity", "--min-face", "120", oracle_ + "obama.jpg"});
  EXPECT_EQ(both.exit_code, 1);
  EXPECT_NE(both.err.find("--min-face"), std::string::npos) << both.err;
  auto low = Partner({"detect", "--min-face", "5", oracle_ + "obama.jpg"});
  EXPECT_EQ(low.exit_code, 1);
  EXPECT_NE(low.err.find("min-face"), std::string::npos) << low.err;
}

TEST_F(LocalCliTest, CompareDecidesSameAndDifferentPeople) {
  auto same = Compare(oracle_ + "obama.jpg", oracle_ + "obama2.jpg");
  ASSERT_EQ(same.exit_code, 0) << same.err;
  auto s = nlohmann::json::parse(same.out);
  EXPECT_TRUE(s["match"]);
  EXPECT_EQ(s["threshold"], 0.6);
  auto different = Compare(oracle_ + "obama.jpg", oracle_ + "biden.jpg");
  ASSERT_EQ(different.exit_code, 0) << different.err;
  auto d = nlohmann::json::parse(different.out);
  EXPECT_FALSE(d["match"]);
  EXPECT_GT(d["distance"].get<double>(), s["distance"].get<double>());
}

// onednn gives dlib's distance; onednn-int8 (the package's signed calibration) stays near it.
TEST_F(LocalCliTest, CompareOnTheOneDnnBackendsGivesDlibsDistance) {
  auto dlib = Compare(oracle_ + "obama.jpg", oracle_ + "obama2.jpg");
  ASSERT_EQ(dlib.exit_code, 0) << dlib.err;
  const double dlib_distance = nlohmann::json::parse(dlib.out)["distance"].get<double>();
  for (const auto& [backend, tolerance] : {std::pair{"onednn", 1e-4}, {"onednn-int8", 0.05}}) {
    auto r = Partner({"compare", "--model", package_, "--vendor-key", key_, "--backend", backend,
                      "--json", oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
    ASSERT_EQ(r.exit_code, 0) << backend << ": " << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_TRUE(j["match"]) << backend;
    EXPECT_NEAR(j["distance"].get<double>(), dlib_distance, tolerance) << backend;
  }
}

// A CPU without VNNI (here: oneDNN told to use AVX2 at most) is refused by onednn-int8 in one
// line, before anything is embedded; onednn still runs; the vendor cannot calibrate on it.
TEST_F(LocalCliTest, TheInt8BackendRefusesACpuWithoutVnni) {
  for (const std::string backend : {"onednn-int8", "onednn"}) {
    auto r = RunProcess({"/usr/bin/env", "ONEDNN_MAX_CPU_ISA=AVX2", Env("FEDFACE_PARTNER_NODE"),
                         "compare", "--model", package_, "--vendor-key", key_, "--backend", backend,
                         oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
    if (backend == "onednn") {
      EXPECT_EQ(r.exit_code, 0) << r.err;
      continue;
    }
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find("onednn-int8: this CPU has no VNNI"), std::string::npos) << r.err;
  }
  // The vendor's packaging measures the int8 self-test tolerance on the int8 network: refused
  // there too, naming the way out.
  auto packaged =
      RunProcess({"/usr/bin/env", "ONEDNN_MAX_CPU_ISA=AVX2", Env("FEDFACE_MODEL_VENDOR"), "package",
                  "--faceapi", testing::FaceApiDir(), "--version", "1.0.1", "--key",
                  testing::TestVendorKey(), "--out", tmp_ + "/avx2"});
  EXPECT_EQ(packaged.exit_code, 1) << packaged.err;
  EXPECT_NE(packaged.err.find("this CPU has no VNNI"), std::string::npos) << packaged.err;
  EXPECT_NE(packaged.err.find("or pass --no-int8-calibration"), std::string::npos) << packaged.err;
  EXPECT_FALSE(fs::exists(tmp_ + "/avx2"));
}

// The vendor's packaging command: the int8 calibration from the photos it is given (every face),
// or none; a package without one loads on onednn and refuses onednn-int8 in one line naming the
// manifest.
TEST_F(LocalCliTest, PackagingCalibratesTheInt8BackendFromTheGivenPhotosOrLeavesItOut) {
  if (testing::FaceApiDir().empty()) FEDFACE_SKIP_OR_FAIL("face-api weights absent");
  auto package = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {Env("FEDFACE_MODEL_VENDOR"),
                                     "package",
                                     "--faceapi",
                                     testing::FaceApiDir(),
                                     "--version",
                                     "1.0.1",
                                     "--key",
                                     testing::TestVendorKey(),
                                     "--out",
                                     out};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunProcess(args);
  };
  const std::string none = tmp_ + "/no-int8", one = tmp_ + "/one-photo";
  auto made = package(none, {"--no-int8-calibration"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(ReadBytes(none + "/manifest.json").find("int8_calibration"), std::string::npos);
  auto refused = Partner({"compare", "--model", none, "--vendor-key", key_, "--backend",
                          "onednn-int8", oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  EXPECT_EQ(refused.exit_code, 1) << refused.err;
  EXPECT_EQ(Lines(refused.err), 1u) << refused.err;
  EXPECT_NE(refused.err.find(none + "/manifest.json: backend onednn-int8: the package has no int8 "
                                    "calibration"),
            std::string::npos)
      << refused.err;
  auto fp32 = Partner({"compare", "--model", none, "--vendor-key", key_, "--backend", "onednn",
                       oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  EXPECT_EQ(fp32.exit_code, 0) << fp32.err;

  // One face is too little to calibrate on: the vendor's command refuses, saying why.
  made = package(one, {"--calibration-image", oracle_ + "obama.jpg"});
  EXPECT_EQ(made.exit_code, 1);
  EXPECT_NE(made.err.find("int8 calibration: the self-test chips embed at distance"),
            std::string::npos)
      << made.err;
  EXPECT_FALSE(fs::exists(one));
  // Two bbt group photos (every face in them).
  const std::string group = data_ + "/faceapi-bbt/group/";
  made = package(
      one, {"--calibration-image", group + "bbt1.jpg", "--calibration-image", group + "bbt2.jpg"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto manifest = nlohmann::json::parse(ReadBytes(one + "/manifest.json"));
  const int faces = manifest["int8_calibration"]["chips"].get<int>();
  EXPECT_GE(faces, 4);
  EXPECT_NE(made.out.find("int8 calibration from " + std::to_string(faces) + " faces"),
            std::string::npos)
      << made.out;
  auto int8 = Partner({"compare", "--model", one, "--vendor-key", key_, "--backend", "onednn-int8",
                       "--json", oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  ASSERT_EQ(int8.exit_code, 0) << int8.err;
  EXPECT_TRUE(nlohmann::json::parse(int8.out)["match"]);
}

TEST_F(LocalCliTest, RefusesAnUnknownBackendNamingTheFlag) {
  auto r = Partner({"compare", "--model", package_, "--vendor-key", key_, "--backend", "cuda",
                    oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(
      r.err.find(
          "--backend: unknown embedding backend 'cuda' (expected dlib | onednn | onednn-int8)"),
      std::string::npos)
      << r.err;
  // Exact parity embeds with dlib, the reference: another backend beside it is refused.
  auto both = Partner({"compare", "--model", package_, "--vendor-key", key_, "--exact-parity",
                       "--backend", "onednn", oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  EXPECT_EQ(both.exit_code, 1) << both.err;
  EXPECT_NE(both.err.find("--backend can only be dlib with them"), std::string::npos) << both.err;
}

TEST_F(LocalCliTest, RefusesPackageWithOneFlippedWeightByte) {
  std::string weights = ReadBytes(package_ + "/weights.dat");
  weights[weights.size() / 2] ^= 0x01;
  WriteBytes(package_ + "/weights.dat", weights);
  auto r = Compare(oracle_ + "obama.jpg", oracle_ + "obama2.jpg");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("weights.dat"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST_F(LocalCliTest, RefusesPackageSignedByAnotherKey) {
  const std::string other = tmp_ + "/other_key";
  ASSERT_EQ(RunProcess({Env("FEDFACE_MODEL_VENDOR"), "keygen", "--out", other}).exit_code, 0);
  auto r = Partner({"compare", "--model", package_, "--vendor-key", other + ".pub",
                    oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("another key"), std::string::npos) << r.err;
}

TEST_F(LocalCliTest, RefusesPackageWithAMissingFile) {
  for (const char* file : {"manifest.sig", "manifest.json", "weights.dat", "selftest/chip0.png"}) {
    const std::string dir = tmp_ + "/missing-" + fs::path(file).filename().string();
    fs::copy(package_, dir, fs::copy_options::recursive);
    fs::remove(dir + "/" + file);
    auto r = Partner({"compare", "--model", dir, "--vendor-key", key_, oracle_ + "obama.jpg",
                      oracle_ + "obama2.jpg"});
    EXPECT_EQ(r.exit_code, 1) << file;
    EXPECT_EQ(Lines(r.err), 1u) << r.err;
    EXPECT_NE(r.err.find(fs::path(file).filename().string()), std::string::npos) << r.err;
  }
}

TEST_F(LocalCliTest, RefusesToLoadAPackageWithoutAPinnedKey) {
  auto r = RunProcess({Env("FEDFACE_PARTNER_NODE"), "compare", "--model", package_,
                       oracle_ + "obama.jpg", oracle_ + "obama2.jpg"});
  if (!Env("FEDFACE_VENDOR_KEY").empty())
    FEDFACE_SKIP_OR_FAIL("FEDFACE_VENDOR_KEY set in environment");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--vendor-key"), std::string::npos) << r.err;
}

TEST_F(LocalCliTest, DetectGivesOneLineErrorsForBadFilesAndGoesOn) {
  const std::string zero = tmp_ + "/zero.jpg", text = tmp_ + "/notes.png",
                    truncated = tmp_ + "/truncated.jpg";
  WriteBytes(zero, "");
  WriteBytes(text, "this is not an image\n");
  const std::string jpeg = ReadBytes(oracle_ + "obama.jpg");
  WriteBytes(truncated, jpeg.substr(0, jpeg.size() / 3));
  auto r = Partner({"detect", "--json", zero, text, truncated, oracle_ + "obama.jpg",
                    tmp_ + "/does-not-exist.jpg"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 4u) << r.err;
  for (const std::string& f : {zero, text, truncated}) {
    EXPECT_NE(r.err.find(f), std::string::npos) << f << "\n" << r.err;
  }
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"][3]["faces"].size(), 1u) << "the good image after bad ones is processed";
}

TEST_F(LocalCliTest, RefusesImagesAboveThePixelLimitBeforeDecoding) {
  auto r = Partner({"detect", "--max-pixels", "100000", oracle_ + "obama.jpg"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("exceeds the limit of 100000 pixels"), std::string::npos) << r.err;
}

TEST_F(LocalCliTest, EvaluateGalleryCountsFailuresToEnrolAndGoesOn) {
  const fs::path gallery = tmp_ + "/gallery";
  fs::create_directories(gallery);
  for (const char* subject : {"amy", "howard", "penny", "raj"}) {
    fs::copy(data_ + "/faceapi-bbt/gallery/" + subject, gallery / subject);
  }
  WriteBytes(gallery / "amy" / "empty.jpg", "");
  WriteBytes(gallery / "howard" / "readme.png", "plain text");
  const std::string jpeg = ReadBytes(oracle_ + "obama.jpg");
  WriteBytes(gallery / "penny" / "cut.jpg", jpeg.substr(0, 5000));
  cv::imwrite((gallery / "raj" / "blank.png").string(),
              cv::Mat(200, 200, CV_8UC3, cv::Scalar(90, 90, 90)));
  auto r = Partner({"evaluate", "--model", package_, "--vendor-key", key_, "--gallery",
                    gallery.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"], 24);
  EXPECT_EQ(j["subjects"], 4);
  EXPECT_GE(j["failures_to_enrol"].get<int>(), 4);
  EXPECT_EQ(Lines(r.err), j["failures_to_enrol"].get<size_t>()) << r.err;
  EXPECT_NE(r.err.find("no face found"), std::string::npos) << r.err;
  const int enrolled = 24 - j["failures_to_enrol"].get<int>();
  EXPECT_EQ(j["mated_comparisons"].get<int>() + j["non_mated_comparisons"].get<int>(),
            enrolled * (enrolled - 1) / 2);
  EXPECT_GT(j["roc_auc"].get<double>(), 0.9);
}

TEST_F(LocalCliTest, EvaluatePairListEmbedsEachImageOnce) {
  const std::string csv = tmp_ + "/pairs.csv";
  WriteBytes(csv,
             "file_x,file_y,Decision\r\n"
             "sheldon/sheldon1.png,sheldon/sheldon2.png,Yes\r\n"
             "sheldon/sheldon1.png,sheldon/sheldon3.png,Yes\r\n"
             "sheldon/sheldon1.png,penny/penny1.png,No\r\n"
             "penny/penny1.png,penny/penny2.png,Yes\r\n"
             "penny/penny2.png,sheldon/sheldon3.png,No\r\n");
  auto r = Partner({"evaluate", "--model", package_, "--vendor-key", key_, "--images",
                    data_ + "/faceapi-bbt/gallery", "--pairs", csv, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"], 5);  // five distinct files behind ten uses
  EXPECT_EQ(j["pairs"]["listed"], 5);
  EXPECT_EQ(j["mated_comparisons"], 3);
  EXPECT_EQ(j["non_mated_comparisons"], 2);
  EXPECT_EQ(j["fnmr_at_fmr"][0]["withheld"], "insufficient non-mated comparisons");

  WriteBytes(tmp_ + "/bad.csv",
             "file_x,file_y,Decision\nsheldon/sheldon1.png,penny/penny1.png,Maybe\n");
  auto bad = Partner({"evaluate", "--model", package_, "--vendor-key", key_, "--images",
                      data_ + "/faceapi-bbt/gallery", "--pairs", tmp_ + "/bad.csv"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("bad.csv:2"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace fedface
