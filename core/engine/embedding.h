// The 128-d face embedding and the distance between two of them.
#pragma once

#include <array>
#include <cmath>

namespace fedface {

inline constexpr int kEmbeddingDim = 128;
inline constexpr int kChipSize = 150;  // chips are kChipSize x kChipSize RGB

using Embedding = std::array<float, kEmbeddingDim>;

// Euclidean distance; 0.6 is dlib's published same-person threshold for this model.
inline float EuclideanDistance(const Embedding& a, const Embedding& b) {
  float sum = 0.f;
  for (int i = 0; i < kEmbeddingDim; ++i) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return std::sqrt(sum);
}

// Largest magnitude an embedding component may have (real values are well below 1). A component
// that is not finite or larger is not a measurement but a broken or crafted model.
inline constexpr float kMaxEmbeddingComponent = 1e3f;

// True when every component is finite and within kMaxEmbeddingComponent.
inline bool IsUsableEmbedding(const Embedding& e) {
  for (float x : e) {
    if (!std::isfinite(x) || std::fabs(x) > kMaxEmbeddingComponent) return false;
  }
  return true;
}

}  // namespace fedface
