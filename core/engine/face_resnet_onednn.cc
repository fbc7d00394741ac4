#include "core/engine/face_resnet_onednn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/engine/onednn_folded_weights.h"

namespace fedface {
namespace onednn_internal {

std::vector<UnitShape> UnitShapes() {
  std::vector<UnitShape> units = {{3, 32, 7, 2}};
  int channels = 32;
  for (const BlockShape& b : kBlocks) {
    units.push_back({channels, b.channels, 3, b.down ? 2 : 1});
    units.push_back({b.channels, b.channels, 3, 1});
    channels = b.channels;
  }
  return units;
}

namespace {

absl::Status CheckSize(const std::string& what, size_t found, size_t need) {
  if (found == need) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("weights (onednn): ", what, " has ", found,
                                                 " values, the architecture needs ", need));
}

}  // namespace

absl::StatusOr<std::shared_ptr<const FoldedWeights>> Fold(const FaceResNetParameters& p) {
  auto out = std::make_shared<FoldedWeights>();
  out->shapes = UnitShapes();
  if (p.convs.size() != out->shapes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("weights (onednn): ", p.convs.size(),
                                                   " conv units, the architecture needs ",
                                                   out->shapes.size()));
  }
  for (size_t u = 0; u < out->shapes.size(); ++u) {
    const UnitShape& s = out->shapes[u];
    const FaceResNetParameters::ConvUnit& c = p.convs[u];
    const size_t per_filter = static_cast<size_t>(s.in) * s.kernel * s.kernel;
    const std::string unit = absl::StrCat("unit ", u, " ");
    for (const absl::Status& st :
         {CheckSize(unit + "filters", c.filters.size(), per_filter * s.out),
          CheckSize(unit + "bias", c.bias.size(), s.out),
          CheckSize(unit + "gamma", c.gamma.size(), s.out),
          CheckSize(unit + "beta", c.beta.size(), s.out)}) {
      if (!st.ok()) return st;
    }
    std::vector<float> filters(c.filters.size()), bias(s.out);
    for (int o = 0; o < s.out; ++o) {
      for (size_t i = 0; i < per_filter; ++i) {
        filters[o * per_filter + i] = c.filters[o * per_filter + i] * c.gamma[o];
      }
      bias[o] = c.bias[o] * c.gamma[o] + c.beta[o];
    }
    out->filters.push_back(std::move(filters));
    out->biases.push_back(std::move(bias));
  }
  RETURN_IF_ERROR(CheckSize("fc", p.fc.size(), static_cast<size_t>(kFcInputs) * kEmbeddingDim));
  out->fc = p.fc;
  for (int i = 0; i < 3; ++i) {
    if (!(p.mean_rgb[i] >= 0.f && p.mean_rgb[i] <= 255.f)) {
      return absl::InvalidArgumentError("weights (onednn): an input mean is outside [0, 255]");
    }
    out->mean_rgb[i] = p.mean_rgb[i];
  }
  return std::shared_ptr<const FoldedWeights>(std::move(out));
}

}  // namespace onednn_internal

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;
using namespace onednn_internal;

// An activation tensor owned by its plan, laid out as ChannelBlockForThisCpu says.
struct Act {
  int h = 0, w = 0, c = 0;
  float* data = nullptr;
};

// Activations keep their channels in blocks of the CPU's vector width (oneDNN's nChw16c on
// AVX-512, nChw8c on AVX2): with them oneDNN's direct convolutions ran this network 3 % faster
// than its NHWC kernels on AVX-512 and 25 % faster on AVX2 (Zen 4, ONEDNN_MAX_CPU_ISA=AVX2).
// Elsewhere NHWC, which is one block of all the channels, so every loop below indexes one way
// for all three layouts.
constexpr int kAllChannels = 1 << 30;

int ChannelBlockForThisCpu() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  if (IsaHas(isa, dnnl::cpu_isa::avx512_core)) return 16;
  if (IsaHas(isa, dnnl::cpu_isa::avx2)) return 8;
  return kAllChannels;
}

// The network compiled for one batch size: buffers, primitives and the steps that run them.
class Plan {
 public:
  Plan(int batch, const FoldedWeights& weights, const dnnl::engine& engine,
       std::vector<std::vector<std::pair<memory::desc, memory>>>& weight_cache,
       std::vector<float>* maxima)
      : n_(batch),
        block_(ChannelBlockForThisCpu()),
        weights_(weights),
        engine_(engine),
        weight_cache_(weight_cache) {
    input_ = NewAct(kChipSize, kChipSize, 3);
    const UnitShape& first = weights.shapes[0];
    Act conv0 = NewAct(OutSize(kChipSize, first), OutSize(kChipSize, first), first.out);
    AddConv(0, input_, conv0, Post::kRelu);
    Observe(maxima, 0, conv0);
    Act x = NewAct((conv0.h - 3) / 2 + 1, (conv0.w - 3) / 2 + 1, conv0.c);
    steps_.push_back(MaxPool3x3Stride2Step(engine, Md(conv0), conv0.data, Md(x), x.data));
    size_t unit = 1;
    for (const BlockShape& b : kBlocks) {
      const UnitShape& s1 = weights.shapes[unit];
      Act a = NewAct(OutSize(x.h, s1), OutSize(x.w, s1), s1.out);
      AddConv(unit, x, a, Post::kRelu);
      Observe(maxima, unit, a);
      if (!b.down) {
        AddConv(unit + 1, a, x, Post::kSumRelu);  // x += conv(a), in place
        Observe(maxima, unit + 1, x);
      } else {
        Act m = NewAct(a.h, a.w, a.c);
        AddConv(unit + 1, a, m, Post::kNone);
        const int hs = (x.h - 2) / 2 + 1, ws = (x.w - 2) / 2 + 1;
        Act sum = NewAct(std::max(m.h, hs), std::max(m.w, ws), std::max(m.c, x.c));
        steps_.push_back([this, m, x, sum](dnnl::stream& stream) {
          stream.wait();
          AddDownsampled(m, x, sum);
        });
        Observe(maxima, unit + 1, sum);
        x = sum;
      }
      unit += 2;
    }
    last_ = x;
  }

  // dlib's input layer: (pixel - channel mean) / 256, RGB; planar (NCHW) for the blocked
  // layouts, whose first convolution oneDNN runs only from planar input.
  void Fill(int index, const cv::Mat& chip) {
    float* dst = input_.data + static_cast<size_t>(index) * kChipSize * kChipSize * 3;
    const bool planar = block_ != kAllChannels;
    const size_t channel_step = planar ? kChipSize * kChipSize : 1, pixel_step = planar ? 1 : 3;
    const float* mean = weights_.mean_rgb;
    for (int r = 0; r < kChipSize; ++r) {
      const uint8_t* p = chip.ptr<uint8_t>(r);
      float* d = dst + r * kChipSize * pixel_step;
      for (int c = 0; c < kChipSize; ++c, p += 3, d += pixel_step) {
        // x / 256 == x * (1 / 256) exactly: a power of two.
        for (int ch = 0; ch < 3; ++ch) d[ch * channel_step] = (p[ch] - mean[ch]) * (1.f / 256);
      }
    }
  }

  // Runs the steps over the chips already in input(); writes n embeddings.
  void Run(dnnl::stream& stream, Embedding* out) {
    for (auto& step : steps_) step(stream);
    stream.wait();
    for (int i = 0; i < n_; ++i) {
      PoolAndFc(last_.data + At(last_, i, 0, 0, 0), last_.h * last_.w, Block(last_), 1.f,
                weights_.fc, out[i]);
    }
  }

 private:
  enum class Post { kNone, kRelu, kSumRelu };

  Act NewAct(int h, int w, int c) {
    const size_t count = static_cast<size_t>(n_) * h * w * c;
    buffers_.emplace_back(static_cast<float*>(std::aligned_alloc(64, (count * 4 + 63) / 64 * 64)),
                          &std::free);
    if (!buffers_.back()) throw std::bad_alloc();
    return {h, w, c, buffers_.back().get()};
  }

  // Calibration only: (*maxima)[unit] grows to the largest value `act` holds after the step
  // before (the u8 tensor the int8 backend stores there).
  void Observe(std::vector<float>* maxima, size_t unit, const Act& act) {
    if (maxima == nullptr) return;
    steps_.push_back([this, maxima, unit, act](dnnl::stream& stream) {
      stream.wait();
      float& m = (*maxima)[unit];
      const size_t count = static_cast<size_t>(n_) * act.h * act.w * act.c;
      for (size_t i = 0; i < count; ++i) m = std::max(m, act.data[i]);
    });
  }

  int Block(const Act& a) const { return std::min(block_, a.c); }

  // The offset of (chip i, channel c, row y, column x) in `a`.
  size_t At(const Act& a, int i, int c, int y, int x) const {
    const int b = Block(a);
    return ((static_cast<size_t>(i) * (a.c / b) + c / b) * a.h * a.w + y * a.w + x) * b + c % b;
  }

  memory::desc Md(const Act& a) const {
    const Tag tag = a.c == 3       ? (block_ == kAllChannels ? Tag::nhwc : Tag::nchw)
                    : block_ == 16 ? Tag::nChw16c
                    : block_ == 8  ? Tag::nChw8c
                                   : Tag::nhwc;
    return memory::desc({n_, a.c, a.h, a.w}, DataType::f32, tag);
  }

  // The folded filters of `unit` in the layout `pd` wants, reordered once per layout and shared
  // by every plan of this network.
  memory WeightsFor(size_t unit, const memory::desc& want) {
    for (auto& [desc, mem] : weight_cache_[unit]) {
      if (desc == want) return mem;
    }
    const UnitShape& s = weights_.shapes[unit];
    memory user({{s.out, s.in, s.kernel, s.kernel}, DataType::f32, Tag::oihw}, engine_,
                const_cast<float*>(weights_.filters[unit].data()));
    memory mem(want, engine_);
    dnnl::stream stream(engine_);
    dnnl::reorder(user, mem).execute(stream, user, mem);
    stream.wait();
    weight_cache_[unit].emplace_back(want, mem);
    return mem;
  }

  void AddConv(size_t unit, const Act& src, const Act& dst, Post post) {
    const UnitShape& s = weights_.shapes[unit];
    const memory::desc any_weights({s.out, s.in, s.kernel, s.kernel}, DataType::f32, Tag::any);
    const memory::desc bias_md({s.out}, DataType::f32, Tag::x);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, Md(src), any_weights,
                                         bias_md, Md(dst), {s.stride, s.stride}, {s.pad(), s.pad()},
                                         {s.pad(), s.pad()});
    dnnl::post_ops ops;
    if (post == Post::kSumRelu) ops.append_sum(1.f);
    if (post != Post::kNone) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per plan: clones run concurrently
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine_);
    dnnl::convolution_forward prim(pd);
    memory weights = WeightsFor(unit, pd.weights_desc());
    memory bias(bias_md, engine_, const_cast<float*>(weights_.biases[unit].data()));
    memory src_mem(Md(src), engine_, src.data), dst_mem(Md(dst), engine_, dst.data);
    memory scratch(pd.scratchpad_desc(), engine_);
    steps_.push_back([=](dnnl::stream& stream) {
      prim.execute(stream, {{DNNL_ARG_SRC, src_mem},
                            {DNNL_ARG_WEIGHTS, weights},
                            {DNNL_ARG_BIAS, bias},
                            {DNNL_ARG_DST, dst_mem},
                            {DNNL_ARG_SCRATCHPAD, scratch}});
    });
  }

  // out = relu(m + avgpool2x2(x)), each read as zero outside its own shape (dlib's add_prev).
  // Runs of `run` channels (the smallest block of the three tensors, so contiguous in each) fall
  // wholly in m or not, in x or not: one branch-free SIMD loop per run. With a branch per value
  // this step cost 4 % of the network.
  void AddDownsampled(const Act& m, const Act& x, const Act& out) const {
    const int hs = (x.h - 2) / 2 + 1, ws = (x.w - 2) / 2 + 1;
    const int run = std::min({Block(m), Block(x), Block(out)});
    const size_t next_column = Block(x), next_row = static_cast<size_t>(x.w) * Block(x);
    for (int i = 0; i < n_; ++i) {
      for (int c0 = 0; c0 < out.c; c0 += run) {
        for (int y = 0; y < out.h; ++y) {
          for (int xx = 0; xx < out.w; ++xx) {
            float* o = out.data + At(out, i, c0, y, xx);
            const bool in_m = y < m.h && xx < m.w && c0 < m.c;
            const bool in_x = y < hs && xx < ws && c0 < x.c;
            const float* mp = in_m ? m.data + At(m, i, c0, y, xx) : nullptr;
            const float* s = in_x ? x.data + At(x, i, c0, 2 * y, 2 * xx) : nullptr;
            auto pooled = [s, next_column, next_row](int c) {
              return (s[c] + s[c + next_column] + s[c + next_row] + s[c + next_row + next_column]) /
                     4.f;
            };
            if (in_m && in_x) {
#pragma omp simd
              for (int c = 0; c < run; ++c) o[c] = std::max(mp[c] + pooled(c), 0.f);
            } else if (in_m) {
#pragma omp simd
              for (int c = 0; c < run; ++c) o[c] = std::max(mp[c], 0.f);
            } else if (in_x) {
#pragma omp simd
              for (int c = 0; c < run; ++c) o[c] = std::max(pooled(c), 0.f);
            } else {
              std::fill(o, o + run, 0.f);
            }
          }
        }
      }
    }
  }

  const int n_;
  const int block_;  // channels per block of every activation but the input
  const FoldedWeights& weights_;
  const dnnl::engine& engine_;
  std::vector<std::vector<std::pair<memory::desc, memory>>>& weight_cache_;
  std::vector<std::unique_ptr<float, decltype(&std::free)>> buffers_;
  std::vector<std::function<void(dnnl::stream&)>> steps_;
  Act input_, last_;
};

class OneDnnFaceResNet final : public FaceResNet {
 public:
  explicit OneDnnFaceResNet(std::shared_ptr<const FoldedWeights> weights)
      : weights_(std::move(weights)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_),
        weight_cache_(weights_->shapes.size()) {}

  std::unique_ptr<FaceResNet> Clone() const override {
    return std::make_unique<OneDnnFaceResNet>(weights_);
  }

  // Calibration only: later Embed calls record each unit's activation maximum in *maxima.
  void ObserveMaxima(std::vector<float>* maxima) { maxima_ = maxima; }

  std::vector<Embedding> Embed(const std::vector<cv::Mat>& chips) override {
    return EmbedInBatches(
        chips, plans_,
        [this](int batch) {
          return std::make_unique<Plan>(batch, *weights_, engine_, weight_cache_, maxima_);
        },
        stream_);
  }

 private:
  std::shared_ptr<const FoldedWeights> weights_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<std::vector<std::pair<memory::desc, memory>>> weight_cache_;
  std::map<int, std::unique_ptr<Plan>> plans_;
  std::vector<float>* maxima_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FaceResNet>> MakeOneDnnFaceResNet(
    const FaceResNetParameters& params) {
  ASSIGN_OR_RETURN(std::shared_ptr<const FoldedWeights> folded, Fold(params));
  try {
    auto net = std::make_unique<OneDnnFaceResNet>(std::move(folded));
    // Compile the single-chip plan now, so a oneDNN failure is a load error, not a crash later.
    std::vector<cv::Mat> probe(1, cv::Mat(kChipSize, kChipSize, CV_8UC3, cv::Scalar(0, 0, 0)));
    (void)net->Embed(probe);
    return std::unique_ptr<FaceResNet>(std::move(net));
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("onednn: ", e.what()));
  }
}

absl::StatusOr<Int8Calibration> ComputeInt8Calibration(const FaceResNetParameters& params,
                                                       const std::vector<cv::Mat>& chips) {
  if (chips.empty() || chips.size() > static_cast<size_t>(kMaxInt8CalibrationChips)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "int8 calibration: ", chips.size(), " chips; expected 1 to ", kMaxInt8CalibrationChips));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const FoldedWeights> folded, Fold(params));
  std::vector<float> maxima(kInt8ActivationScaleCount, 0.f);
  try {
    OneDnnFaceResNet net(std::move(folded));
    net.ObserveMaxima(&maxima);
    for (const Embedding& e : net.Embed(chips)) {
      if (!IsUsableEmbedding(e)) {
        return absl::InternalError("int8 calibration: the fp32 network failed on a chip");
      }
    }
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("onednn: ", e.what()));
  }
  Int8Calibration out;
  out.chips = static_cast<int>(chips.size());
  for (float m : maxima) {
    out.activation_scales.push_back(
        std::clamp(static_cast<double>(m) / 255, kMinInt8ActivationScale, kMaxInt8ActivationScale));
  }
  return out;
}

}  // namespace fedface
