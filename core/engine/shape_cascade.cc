#include "core/engine/shape_cascade.h"

#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>

#include <stdexcept>
#include <string>

namespace fedface {
namespace {

// Trees ahead whose leaves are requested while the current one is added: enough misses in flight
// to cover the memory latency, few enough to stay in L1.
constexpr size_t kPrefetchTrees = 8;

struct Split {
  uint32_t idx1, idx2;
  float thresh;
};

}  // namespace

// One cascade level: dlib's trees with splits and leaves packed, tree t's nodes at
// split_offset[t] and its leaves (dims floats each) at leaf_offset[t].
struct CascadeLevel {
  std::vector<Split> splits;
  std::vector<size_t> split_offset, split_count, leaf_offset;
  std::vector<float> leaves;
  std::vector<unsigned long> anchor_idx;
  std::vector<dlib::vector<float, 2>> deltas;
};

struct ShapeCascade::Model {
  dlib::matrix<float, 0, 1> initial_shape;
  std::vector<CascadeLevel> levels;
};

ShapeCascade::ShapeCascade() = default;
ShapeCascade::~ShapeCascade() = default;
ShapeCascade::ShapeCascade(ShapeCascade&&) noexcept = default;
ShapeCascade& ShapeCascade::operator=(ShapeCascade&&) noexcept = default;

void ShapeCascade::Deserialize(std::istream& in) {
  // dlib's own layout (shape_predictor.h, deserialize): version 1, then the four members.
  int version = 0;
  dlib::deserialize(version, in);
  if (version != 1)
    throw dlib::serialization_error(
        "Unexpected version found while deserializing dlib::shape_predictor.");
  auto model = std::make_unique<Model>();
  std::vector<std::vector<dlib::impl::regression_tree>> forests;
  std::vector<std::vector<unsigned long>> anchor_idx;
  std::vector<std::vector<dlib::vector<float, 2>>> deltas;
  dlib::deserialize(model->initial_shape, in);
  dlib::deserialize(forests, in);
  dlib::deserialize(anchor_idx, in);
  dlib::deserialize(deltas, in);
  if (anchor_idx.size() != forests.size() || deltas.size() != forests.size()) {
    throw std::invalid_argument("shape predictor: cascade levels disagree in number");
  }
  const long dims = model->initial_shape.size();
  for (size_t l = 0; l < forests.size(); ++l) {
    CascadeLevel level;
    if (anchor_idx[l].size() != deltas[l].size()) {
      throw std::invalid_argument("shape predictor: anchors and deltas disagree in number");
    }
    for (unsigned long a : anchor_idx[l]) {
      if (2 * a + 1 >= static_cast<unsigned long>(dims)) {
        throw std::invalid_argument("shape predictor: anchor past the shape");
      }
    }
    for (dlib::impl::regression_tree& tree : forests[l]) {
      if (tree.leaf_values.size() != tree.splits.size() + 1) {
        throw std::invalid_argument("shape predictor: a tree's leaves do not match its splits");
      }
      level.split_offset.push_back(level.splits.size());
      level.split_count.push_back(tree.splits.size());
      for (const dlib::impl::split_feature& s : tree.splits) {
        if (s.idx1 >= deltas[l].size() || s.idx2 >= deltas[l].size()) {
          throw std::invalid_argument("shape predictor: a split reads past the feature pixels");
        }
        level.splits.push_back(
            {static_cast<uint32_t>(s.idx1), static_cast<uint32_t>(s.idx2), s.thresh});
      }
      level.leaf_offset.push_back(level.leaves.size());
      for (const dlib::matrix<float, 0, 1>& leaf : tree.leaf_values) {
        if (leaf.size() != dims) throw std::invalid_argument("shape predictor: leaf of wrong size");
        level.leaves.insert(level.leaves.end(), leaf.begin(), leaf.end());
      }
      tree = {};  // free dlib's copy as we go: the model is ~100 MB
    }
    level.anchor_idx = std::move(anchor_idx[l]);
    level.deltas = std::move(deltas[l]);
    model->levels.push_back(std::move(level));
  }
  model_ = std::move(model);
}

unsigned long ShapeCascade::num_parts() const {
  return model_ ? model_->initial_shape.size() / 2 : 0;
}

std::vector<cv::Point> ShapeCascade::Predict(const cv::Mat& rgb, long left, long top, long right,
                                             long bottom) const {
  const dlib::cv_image<dlib::rgb_pixel> img(rgb);
  const dlib::rectangle rect(left, top, right, bottom);
  dlib::matrix<float, 0, 1> current_shape = model_->initial_shape;
  const size_t dims = current_shape.size();
  std::vector<float> feature_pixel_values;
  std::vector<size_t> leaf_start;
  for (const CascadeLevel& level : model_->levels) {
    dlib::impl::extract_feature_pixel_values(img, rect, current_shape, model_->initial_shape,
                                             level.anchor_idx, level.deltas, feature_pixel_values);
    // Every tree of a level reads only the feature pixels, so all leaves are known before any is
    // added (dlib::impl::regression_tree::operator(): left child 2i+1 when the difference exceeds
    // the threshold, else right child 2i+2).
    const size_t trees = level.split_offset.size();
    leaf_start.resize(trees);
    for (size_t t = 0; t < trees; ++t) {
      const Split* s = level.splits.data() + level.split_offset[t];
      const size_t n = level.split_count[t];
      size_t i = 0;
      while (i < n) {
        i = (feature_pixel_values[s[i].idx1] - feature_pixel_values[s[i].idx2] > s[i].thresh)
                ? 2 * i + 1
                : 2 * i + 2;
      }
      leaf_start[t] = level.leaf_offset[t] + (i - n) * dims;
    }
    // The leaves added in dlib's order (tree by tree, element by element): the same sums.
    float* shape = &current_shape(0);
    for (size_t t = 0; t < trees; ++t) {
      if (t + kPrefetchTrees < trees) {
        const char* ahead =
            reinterpret_cast<const char*>(level.leaves.data() + leaf_start[t + kPrefetchTrees]);
        for (size_t b = 0; b < dims * sizeof(float); b += 64) __builtin_prefetch(ahead + b);
        __builtin_prefetch(ahead + dims * sizeof(float) - 1);
      }
      const float* leaf = level.leaves.data() + leaf_start[t];
      for (size_t j = 0; j < dims; ++j) shape[j] += leaf[j];
    }
  }
  const dlib::point_transform_affine tform_to_img = dlib::impl::unnormalizing_tform(rect);
  std::vector<cv::Point> parts(dims / 2);
  for (size_t i = 0; i < parts.size(); ++i) {
    const dlib::point p = tform_to_img(dlib::impl::location(current_shape, i));
    parts[i] = cv::Point(static_cast<int>(p.x()), static_cast<int>(p.y()));
  }
  return parts;
}

}  // namespace fedface
