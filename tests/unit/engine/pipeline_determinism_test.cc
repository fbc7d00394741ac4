// The default pipeline gives the same result for every file whatever the number of workers and the
// order of the files: the same boxes, landmarks and embeddings to the bit (each photo's faces are
// embedded as one batch of that photo, never mixed with another photo's), and one clear error per
// bad file, naming it, with nothing else lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "core/engine/face_engine.h"
#include "core/package/package_verifier.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;

class PipelineDeterminismTest : public ::testing::TestWithParam<EmbeddingBackend> {};

std::map<std::string, ImageAnalysis> RunEngine(EmbeddingBackend backend, int workers,
                                               const std::vector<std::string>& files) {
  auto model =
      LoadVerifiedModel(testing::TestPackageDir(), testing::TestVendorKey() + ".pub", backend);
  EXPECT_TRUE(model.ok()) << model.status();
  EngineOptions options;  // the fast default detector
  options.workers = workers;
  options.backend = backend;
  auto engine = FaceEngine::Create(options, std::move(model->net));
  EXPECT_TRUE(engine.ok()) << engine.status();
  std::map<std::string, ImageAnalysis> out;
  size_t calls = 0;
  std::mutex mu;
  (*engine)->ProcessFiles(files, ProcessOptions{}, [&](size_t i, ImageAnalysis&& a) {
    std::lock_guard lock(mu);
    ++calls;
    EXPECT_EQ(a.source, files[i]);
    out[files[i]] = std::move(a);
  });
  EXPECT_EQ(calls, files.size());
  return out;
}

TEST_P(PipelineDeterminismTest, SameResultsWhateverTheWorkersAndTheOrder) {
  const std::string faceapi = testing::FaceApiDir();
  const std::string data = testing::DatasetsDir();
  if (faceapi.empty() || data.empty() || testing::TestPackageDir().empty()) {
    FEDFACE_SKIP_OR_FAIL("face-api cache, ../shared/datasets or test package absent; skipping");
  }
  std::vector<std::string> files;
  for (const std::string& dir : {faceapi + "/demo", data + "/faceapi-bbt/group"}) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() == ".jpg") files.push_back(e.path().string());
    }
  }
  // Bad files among the good ones: empty, truncated JPEG, not an image.
  const std::string tmp = testing::MakeTempDir("determinism");
  std::ofstream(tmp + "/empty.jpg").close();
  {
    std::ifstream in(files[0], std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(tmp + "/truncated.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  std::ofstream(tmp + "/text.jpg") << "not an image\n";
  const std::vector<std::string> bad = {tmp + "/empty.jpg", tmp + "/truncated.jpg",
                                        tmp + "/text.jpg"};
  files.insert(files.begin() + 3, bad.begin(), bad.end());
  std::vector<std::string> reversed(files.rbegin(), files.rend());

  const auto one = RunEngine(GetParam(), 1, files);
  const auto two = RunEngine(GetParam(), 2, files);
  const auto two_reversed = RunEngine(GetParam(), 2, reversed);
  ASSERT_EQ(one.size(), files.size());
  size_t faces = 0;
  for (const std::string& f : files) {
    const ImageAnalysis& a = one.at(f);
    for (const auto* other : {&two.at(f), &two_reversed.at(f)}) {
      EXPECT_EQ(a.status, other->status) << f;
      ASSERT_EQ(a.faces.size(), other->faces.size()) << f;
      ASSERT_EQ(a.embeddings.size(), other->embeddings.size()) << f;
      for (size_t i = 0; i < a.faces.size(); ++i) {
        EXPECT_EQ(a.faces[i].box.raw_left, other->faces[i].box.raw_left) << f;
        EXPECT_EQ(a.faces[i].box.raw_top, other->faces[i].box.raw_top) << f;
        EXPECT_EQ(a.faces[i].box.raw_right, other->faces[i].box.raw_right) << f;
        EXPECT_EQ(a.faces[i].box.raw_bottom, other->faces[i].box.raw_bottom) << f;
        EXPECT_EQ(a.faces[i].landmarks, other->faces[i].landmarks) << f;
        EXPECT_EQ(0, std::memcmp(a.embeddings[i].data(), other->embeddings[i].data(),
                                 sizeof(a.embeddings[i])))
            << f << " face " << i << ": embeddings differ";
      }
    }
    faces += a.embeddings.size();
    const bool is_bad = std::find(bad.begin(), bad.end(), f) != bad.end();
    EXPECT_EQ(a.status.ok(), !is_bad) << f << ": " << a.status;
    if (is_bad) {
      EXPECT_EQ(std::string(a.status.message()).rfind(f + ": ", 0), 0u)
          << "the error names the file: " << a.status;
    }
  }
  EXPECT_GT(faces, 25u);
}

INSTANTIATE_TEST_SUITE_P(Backends, PipelineDeterminismTest,
                         ::testing::Values(EmbeddingBackend::kOneDnn, EmbeddingBackend::kDlib),
                         [](const auto& info) {
                           return std::string(EmbeddingBackendName(info.param));
                         });

}  // namespace
}  // namespace fedface
