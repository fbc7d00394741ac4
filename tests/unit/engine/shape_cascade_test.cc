// ShapeCascade against dlib's own shape_predictor on real faces: the same 68 landmarks, to the
// pixel, for every face the detector finds in the npm sample photos and ../shared/datasets, and
// for boxes moved, shrunk, grown and pushed past the border (the landmark model then samples
// outside the image). Also: a stream that is not a shape predictor is refused.
#include "core/engine/shape_cascade.h"

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/engine/face_aligner.h"
#include "core/engine/face_detector.h"
#include "core/engine/image_decoder.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> Photos() {
  std::vector<std::string> out;
  const std::string faceapi = testing::FaceApiDir();
  const std::string data = testing::DatasetsDir();
  for (const std::string& dir :
       {faceapi + "/demo", data + "/faceapi-bbt/group", data + "/face_recognition-tests"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      const std::string ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".png") out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ShapeCascadeTest, SameLandmarksAsDlibsShapePredictor) {
  if (testing::FaceApiDir().empty() || testing::DatasetsDir().empty()) {
    FEDFACE_SKIP_OR_FAIL("../shared/datasets or the face-api cache is absent; skipping test");
  }
  dlib::shape_predictor reference;
  ShapeCascade cascade;
  {
    std::ifstream a(DefaultLandmarkModelPath(), std::ios::binary);
    std::ifstream b(DefaultLandmarkModelPath(), std::ios::binary);
    dlib::deserialize(reference, a);
    cascade.Deserialize(b);
  }
  ASSERT_EQ(cascade.num_parts(), reference.num_parts());
  auto detector = MakeHogFaceDetector(FastDetectorOptions());
  ASSERT_TRUE(detector.ok());
  int boxes = 0;
  for (const std::string& file : Photos()) {
    absl::StatusOr<cv::Mat> rgb = DecodeImageFile(file);
    ASSERT_TRUE(rgb.ok()) << rgb.status();
    const dlib::cv_image<dlib::rgb_pixel> img(*rgb);
    for (const FaceBox& f : (*detector)->Detect(*rgb)) {
      const long w = f.raw_right - f.raw_left;
      // The face, then moved, shrunk, grown and past each border.
      const std::vector<dlib::rectangle> variants = {
          {f.raw_left, f.raw_top, f.raw_right, f.raw_bottom},
          {f.raw_left + w / 7, f.raw_top - w / 5, f.raw_right + w / 7, f.raw_bottom - w / 5},
          {f.raw_left + w / 4, f.raw_top + w / 4, f.raw_right - w / 4, f.raw_bottom - w / 4},
          {f.raw_left - w, f.raw_top - w, f.raw_right + w, f.raw_bottom + w},
          {-w / 2, f.raw_top, w / 2, f.raw_bottom},
          {f.raw_left, rgb->rows - w / 3, f.raw_right, rgb->rows - w / 3 + w},
      };
      for (const dlib::rectangle& r : variants) {
        const dlib::full_object_detection want = reference(img, r);
        const std::vector<cv::Point> got =
            cascade.Predict(*rgb, r.left(), r.top(), r.right(), r.bottom());
        ASSERT_EQ(got.size(), want.num_parts());
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].x, want.part(i).x()) << file << " box " << r << " part " << i;
          ASSERT_EQ(got[i].y, want.part(i).y()) << file << " box " << r << " part " << i;
        }
        ++boxes;
      }
    }
  }
  std::cout << boxes << " boxes, every landmark equal to dlib's\n";
  EXPECT_GT(boxes, 100);
}

TEST(ShapeCascadeTest, RefusesAStreamThatIsNotAShapePredictor) {
  for (const std::string& bytes :
       {std::string(), std::string("\x02junk", 5), std::string("\x01\x00\x00\x00", 4)}) {
    std::istringstream in(bytes);
    ShapeCascade cascade;
    EXPECT_ANY_THROW(cascade.Deserialize(in)) << bytes.size() << " bytes";
  }
}

}  // namespace
}  // namespace fedface
