// INTERNAL to core/engine's oneDNN backends (face_resnet_onednn.cc, face_resnet_onednn_int8.cc):
// the architecture table both index by and the weights with each scale layer folded into its
// convolution.
#pragma once

#include <omp.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <opencv2/core/mat.hpp>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/face_resnet.h"

namespace fedface::onednn_internal {

// One convolution followed by its scale layer, as dlib's anet_type lays them out: dlib pads a
// convolution by kernel/2 when its stride is 1 and not at all otherwise.
struct UnitShape {
  int in, out, kernel, stride;
  int pad() const { return stride == 1 ? kernel / 2 : 0; }
};

// A residual block: two 3x3 units; `down` blocks start with stride 2 and add an average-pooled
// (2x2, stride 2) copy of their input, zero-padded to the larger of the two shapes.
struct BlockShape {
  int channels;
  bool down;
};

inline constexpr BlockShape kBlocks[] = {
    {32, false}, {32, false},  {32, false},  {64, true},  {64, false},  {64, false},  {64, false},
    {128, true}, {128, false}, {128, false}, {256, true}, {256, false}, {256, false}, {256, true}};
inline constexpr int kFcInputs = 256;

std::vector<UnitShape> UnitShapes();

// Whether oneDNN's ISA `isa` includes `want` (the values are bit sets).
inline bool IsaHas(dnnl::cpu_isa isa, dnnl::cpu_isa want) {
  return (static_cast<unsigned>(isa) & static_cast<unsigned>(want)) == static_cast<unsigned>(want);
}

inline int OutSize(int in, const UnitShape& s) {
  return (in + 2 * s.pad() - s.kernel) / s.stride + 1;
}

// The parameters with every scale layer folded into its convolution (w' = w * gamma, b' = b *
// gamma + beta), shared read-only by every clone.
struct FoldedWeights {
  std::vector<UnitShape> shapes;
  std::vector<std::vector<float>> filters;  // OIHW
  std::vector<std::vector<float>> biases;
  std::vector<float> fc;
  float mean_rgb[3];
};

// Checks every tensor's size against UnitShapes() ("weights (onednn): ..." on a mismatch).
absl::StatusOr<std::shared_ptr<const FoldedWeights>> Fold(const FaceResNetParameters& p);

// One thread per network, as the dlib backend: the engine's pool supplies the parallelism. The
// caller's setting is restored (the thread may run other OpenMP code, e.g. faiss).
struct OneOmpThread {
  const int before = omp_get_max_threads();
  OneOmpThread() { omp_set_num_threads(1); }
  ~OneOmpThread() { omp_set_num_threads(before); }
};

// The final layers on the last activation of one chip (`area` pixels of kFcInputs channels in
// blocks of `block` channels, kFcInputs being NHWC; value = stored * scale): average pooling,
// then the fc layer.
template <typename T>
void PoolAndFc(const T* last, int area, int block, float scale, const std::vector<float>& fc,
               Embedding& e) {
  std::vector<float> pooled(kFcInputs, 0.f);
  for (int c0 = 0; c0 < kFcInputs; c0 += block) {
    for (int p = 0; p < area; ++p) {
      for (int c = c0; c < c0 + block; ++c) pooled[c] += last[c0 * area + p * block + c - c0];
    }
  }
  for (float& v : pooled) v = v * scale / area;
  e.fill(0.f);
  for (int k = 0; k < kFcInputs; ++k) {
    const float* row = fc.data() + static_cast<size_t>(k) * kEmbeddingDim;
    for (int j = 0; j < kEmbeddingDim; ++j) e[j] += pooled[k] * row[j];
  }
}

// dlib's max_pool<3,3,2,2> (no padding) as a oneDNN primitive over tensors of any layout and data
// type (one scale in and out: the maximum of stored values is the stored maximum). Returns the
// step that runs it. A plain loop here cost as much as a convolution on u8 and 3 % of the fp32
// network.
inline std::function<void(dnnl::stream&)> MaxPool3x3Stride2Step(const dnnl::engine& engine,
                                                                const dnnl::memory::desc& src,
                                                                void* src_data,
                                                                const dnnl::memory::desc& dst,
                                                                void* dst_data) {
  dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
                                   src, dst, {2, 2}, {3, 3}, {0, 0}, {0, 0});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per plan: clones run concurrently
  dnnl::pooling_forward::primitive_desc pd(desc, attr, engine);
  dnnl::pooling_forward prim(pd);
  dnnl::memory src_mem(src, engine, src_data), dst_mem(dst, engine, dst_data);
  dnnl::memory scratch(pd.scratchpad_desc(), engine);
  return [=](dnnl::stream& stream) {
    prim.execute(
        stream, {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_DST, dst_mem}, {DNNL_ARG_SCRATCHPAD, scratch}});
  };
}

inline constexpr int kMaxBatch = 16;

// Embeds `chips` through plans compiled per batch size: batches of kMaxBatch, then powers of two
// (at most five plans per network), cached in `plans`; make(batch) compiles one. A Plan has
// Fill(index, chip) and Run(stream, out). A batch oneDNN cannot compile or allocate leaves the
// faces not embedded with unusable (NaN) embeddings, a failure of their image, never a crash of
// the worker.
template <typename Plan, typename Make>
std::vector<Embedding> EmbedInBatches(const std::vector<cv::Mat>& chips,
                                      std::map<int, std::unique_ptr<Plan>>& plans, const Make& make,
                                      dnnl::stream& stream) {
  OneOmpThread one_thread;
  std::vector<Embedding> out(chips.size());
  size_t done = 0;
  try {
    while (done < chips.size()) {
      int batch = kMaxBatch;
      while (batch > static_cast<int>(chips.size() - done)) batch /= 2;
      auto it = plans.find(batch);
      if (it == plans.end()) it = plans.emplace(batch, make(batch)).first;
      Plan& plan = *it->second;
      for (int i = 0; i < batch; ++i) plan.Fill(i, chips[done + i]);
      plan.Run(stream, out.data() + done);
      done += batch;
    }
  } catch (const std::exception&) {
    for (size_t i = done; i < out.size(); ++i) out[i].fill(std::nanf(""));
  }
  return out;
}

}  // namespace fedface::onednn_internal
