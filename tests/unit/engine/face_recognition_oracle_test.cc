// The face_recognition library's own assertions (it wraps the same dlib models), reproduced
// exactly: HOG boxes at upsample 1 and 0, and 68-point landmarks.
#include <gtest/gtest.h>

#include <iostream>

#include "core/engine/face_aligner.h"
#include "core/engine/face_detector.h"
#include "core/engine/image_decoder.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

// face_recognition reports (top, right, bottom, left).
struct Css {
  long top, right, bottom, left;
};

class FaceRecognitionOracleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::DatasetsDir();
    if (dir_.empty()) FEDFACE_SKIP_OR_FAIL("../shared/datasets is absent; skipping test");
    dir_ += "/face_recognition-tests/";
  }

  std::vector<FaceBox> Detect(const std::string& file, int upsample) {
    DetectorOptions options;
    options.upsample = upsample;
    auto detector = MakeHogFaceDetector(options);
    EXPECT_TRUE(detector.ok());
    absl::StatusOr<cv::Mat> image = DecodeImageFile(dir_ + file);
    EXPECT_TRUE(image.ok()) << image.status();
    return (*detector)->Detect(*image);
  }

  static void ExpectBox(const FaceBox& b, Css css) {
    EXPECT_EQ(b.top, css.top);
    EXPECT_EQ(b.right, css.right);
    EXPECT_EQ(b.bottom, css.bottom);
    EXPECT_EQ(b.left, css.left);
  }

  std::string dir_;
};

TEST_F(FaceRecognitionOracleTest, FindsObamaExactlyAtUpsampleOne) {
  std::vector<FaceBox> boxes = Detect("obama.jpg", 1);
  ASSERT_EQ(boxes.size(), 1u);
  ExpectBox(boxes[0], {142, 617, 409, 349});
}

// The datasets README lists (154, 611, 390, 375) as "HOG, upsample 0", but face_recognition's
// test asserts it for batch_face_locations, which runs dlib's CNN (mmod) detector. HOG cannot
// reproduce a CNN box exactly; it must find the same single face, and upsample 0 must really
// run without enlarging (a different, coarser box than upsample 1).
TEST_F(FaceRecognitionOracleTest, FindsObamaAtUpsampleZeroWhereTheCnnDetectorDoes) {
  std::vector<FaceBox> boxes = Detect("obama.jpg", 0);
  ASSERT_EQ(boxes.size(), 1u);
  const cv::Rect ours(boxes[0].left, boxes[0].top, boxes[0].right - boxes[0].left,
                      boxes[0].bottom - boxes[0].top);
  const cv::Rect cnn(375, 154, 611 - 375, 390 - 154);
  const double iou = double((ours & cnn).area()) / (ours | cnn).area();
  std::cout << "upsample 0 box " << ours.x << "," << ours.y << " " << ours.width << "x"
            << ours.height << ", IoU with the CNN oracle " << iou << "\n";
  EXPECT_GT(iou, 0.8);
  const FaceBox at_one = Detect("obama.jpg", 1)[0];
  EXPECT_NE(boxes[0].left, at_one.left);
}

TEST_F(FaceRecognitionOracleTest, FindsTheFaceInAnRgbaPng) {
  std::vector<FaceBox> boxes = Detect("32bit.png", 1);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0].top, 290);
  EXPECT_EQ(boxes[0].bottom, 558);
}

TEST_F(FaceRecognitionOracleTest, ClipsPartialFacesToTheImage) {
  std::vector<FaceBox> left = Detect("obama_partial_face.jpg", 1);
  ASSERT_EQ(left.size(), 1u);
  ExpectBox(left[0], {142, 191, 365, 0});
  EXPECT_LT(left[0].raw_left, 0) << "the raw box runs off the image";
  std::vector<FaceBox> right = Detect("obama_partial_face2.jpg", 1);
  ASSERT_EQ(right.size(), 1u);
  ExpectBox(right[0], {142, 551, 409, 349});
}

TEST_F(FaceRecognitionOracleTest, PlacesTheSixtyEightLandmarksExactly) {
  std::vector<FaceBox> boxes = Detect("obama.jpg", 1);
  ASSERT_EQ(boxes.size(), 1u);
  auto aligner = FaceAligner::Load(DefaultLandmarkModelPath());
  ASSERT_TRUE(aligner.ok()) << aligner.status();
  Landmarks points = (*aligner)->FindLandmarks(*DecodeImageFile(dir_ + "obama.jpg"), boxes[0]);
  EXPECT_EQ(points[10], cv::Point(552, 399));
  const std::vector<cv::Point> chin = {{369, 220}, {372, 254}, {378, 289}, {384, 322}, {395, 353},
                                       {414, 382}, {437, 407}, {464, 424}, {495, 428}, {527, 420},
                                       {552, 399}, {576, 372}, {594, 344}, {604, 314}, {610, 282},
                                       {613, 250}, {615, 219}};
  for (size_t i = 0; i < chin.size(); ++i) EXPECT_EQ(points[i], chin[i]) << "chin point " << i;
}

TEST(FaceAlignerTest, RefusesMissingLandmarkModel) {
  auto aligner = FaceAligner::Load("/nonexistent/shape_predictor.dat");
  ASSERT_FALSE(aligner.ok());
  EXPECT_NE(aligner.status().message().find("/nonexistent/shape_predictor.dat"), std::string::npos);
}

TEST(FaceDetectorTest, RefusesUpsampleOutOfRange) {
  DetectorOptions options;
  options.upsample = 9;
  EXPECT_FALSE(MakeHogFaceDetector(options).ok());
}

}  // namespace
}  // namespace fedface
