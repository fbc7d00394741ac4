// dlib's shape_predictor (the 68-point landmark cascade) with the same arithmetic in the same
// order, so the same landmarks to the bit, but with its 130 MB of leaf vectors packed in one array
// and fetched ahead: each tree's leaf is a cache miss to main memory, and dlib's loop waits for
// them one at a time (about 5 ms of a 1080p photo's CPU per face, most of it stalled).
#pragma once

#include <cstdint>
#include <istream>
#include <memory>
#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>
#include <vector>

namespace fedface {

class ShapeCascade {
 public:
  ShapeCascade();
  ~ShapeCascade();
  ShapeCascade(ShapeCascade&&) noexcept;
  ShapeCascade& operator=(ShapeCascade&&) noexcept;

  // Reads dlib's serialization of a shape_predictor. Throws what dlib::deserialize throws on a
  // stream that is not one (dlib::serialization_error), or std::invalid_argument naming what is
  // inconsistent (a tree whose leaves do not match its splits, a split past the feature pixels).
  void Deserialize(std::istream& in);

  unsigned long num_parts() const;

  // dlib::shape_predictor::operator()(cv_image<rgb_pixel>(rgb), rectangle(l, t, r, b)).parts().
  // REQUIRES: rgb is CV_8UC3. Thread-safe (read-only).
  std::vector<cv::Point> Predict(const cv::Mat& rgb, long left, long top, long right,
                                 long bottom) const;

 private:
  struct Model;
  std::unique_ptr<Model> model_;
};

}  // namespace fedface
