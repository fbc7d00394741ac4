// The face ResNet in int8 on oneDNN: the fp32 backend's plan (face_resnet_onednn.cc) with u8
// activations and s8 weights, so oneDNN runs its int8 (VNNI where the CPU has it) convolutions.
//
// Each activation tensor holds round(value / scale) in u8: every convolution reads a tensor that
// follows a ReLU (or the raw pixels), so no zero point is needed. The first convolution reads the
// chip's pixels as they are (the input layer's "- mean, / 256" is folded into its bias, exact
// because that convolution has no padding). Weights: one scale per output channel, max |w| / 127,
// from the weights themselves. Activations: the vendor's calibration (int8_calibration.h), one
// scale per unit for the tensor its output feeds. oneDNN 2.x applies the output scales after the
// bias, so the bias is given in accumulator units.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/engine/face_resnet_onednn.h"
#include "core/engine/onednn_folded_weights.h"

namespace fedface {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DataType = memory::data_type;
using namespace onednn_internal;

// What each convolution needs beyond the folded filters, all checked finite.
struct QuantizedUnit {
  std::vector<float> weight_scales;  // per output channel: the reorder multiplies by 1 / these
  std::vector<float> output_scales;  // per output channel: accumulator -> stored value
  std::vector<float> bias;           // in accumulator units
  float sum_scale = 0.f;             // blocks without down-sampling: old x -> new x's units
};

struct Int8Weights {
  std::shared_ptr<const FoldedWeights> folded;
  std::vector<QuantizedUnit> units;
  std::vector<float> act_scales;  // per unit, as float
};

absl::StatusOr<std::shared_ptr<const Int8Weights>> Quantize(
    std::shared_ptr<const FoldedWeights> folded, const Int8Calibration& calibration) {
  RETURN_IF_ERROR(ValidateInt8Calibration(calibration, "int8_calibration"));
  auto out = std::make_shared<Int8Weights>();
  const std::vector<UnitShape>& shapes = folded->shapes;
  if (shapes.size() != static_cast<size_t>(kInt8ActivationScaleCount)) {
    return absl::InternalError("int8: the architecture table and the calibration disagree");
  }
  for (double s : calibration.activation_scales) out->act_scales.push_back(static_cast<float>(s));
  // The scale of each unit's input tensor, following the plan's data flow.
  std::vector<float> in_scale(shapes.size());
  in_scale[0] = 1.f / 256;  // raw pixels
  float x_scale = out->act_scales[0];
  // Down-sampling blocks write their second convolution in f32 (the sum is a loop); the others
  // add it to x in place.
  std::vector<bool> f32_dst(shapes.size(), false), sums(shapes.size(), false);
  size_t unit = 1;
  for (const BlockShape& b : kBlocks) {
    in_scale[unit] = x_scale;
    in_scale[unit + 1] = out->act_scales[unit];
    x_scale = out->act_scales[unit + 1];
    (b.down ? f32_dst : sums)[unit + 1] = true;
    unit += 2;
  }
  for (size_t u = 0; u < shapes.size(); ++u) {
    const UnitShape& s = shapes[u];
    const size_t per_filter = static_cast<size_t>(s.in) * s.kernel * s.kernel;
    const std::vector<float>& w = folded->filters[u];
    QuantizedUnit q;
    for (int o = 0; o < s.out; ++o) {
      float max_abs = 0.f;
      for (size_t i = 0; i < per_filter; ++i) {
        max_abs = std::max(max_abs, std::fabs(w[o * per_filter + i]));
      }
      const float ws = max_abs > 0.f ? max_abs / 127.f : 1.f;
      float bias = folded->biases[u][o];
      if (u == 0) {
        // conv(pixels - mean) / 256 = conv(pixels) / 256 - conv(mean) / 256, with the weights
        // as the reorder rounds them.
        const int area = s.kernel * s.kernel;
        for (int c = 0; c < s.in; ++c) {
          for (int k = 0; k < area; ++k) {
            const float wq = std::nearbyint(w[o * per_filter + c * area + k] * (1.f / ws));
            bias -= wq * ws * folded->mean_rgb[c] / 256.f;
          }
        }
      }
      const float acc_scale = in_scale[u] * ws;
      q.weight_scales.push_back(ws);
      q.output_scales.push_back(f32_dst[u] ? acc_scale : acc_scale / out->act_scales[u]);
      q.bias.push_back(bias / acc_scale);
      if (!std::isfinite(q.output_scales.back()) || !std::isfinite(q.bias.back()) ||
          !std::isfinite(1.f / ws)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "int8_calibration: unit ", u, " output channel ", o,
            ": the activation scales and the weights give a non-finite quantization scale"));
      }
    }
    if (sums[u]) {
      q.sum_scale = in_scale[u - 1] / out->act_scales[u];
      if (!std::isfinite(q.sum_scale)) {
        return absl::InvalidArgumentError(
            absl::StrCat("int8_calibration: unit ", u, ": the residual sum's scale is not finite"));
      }
    }
    out->units.push_back(std::move(q));
  }
  out->folded = std::move(folded);
  return std::shared_ptr<const Int8Weights>(std::move(out));
}

// An activation tensor, NHWC, owned by its plan: u8 (value = stored * scale) or f32.
struct Tensor {
  int h = 0, w = 0, c = 0;
  DataType type = DataType::u8;
  void* data = nullptr;
  float scale = 1.f;
  uint8_t* u8() const { return static_cast<uint8_t*>(data); }
  float* f32() const { return static_cast<float*>(data); }
};

using WeightCache = std::vector<std::vector<std::pair<memory::desc, memory>>>;

class Int8Plan {
 public:
  Int8Plan(int batch, const Int8Weights& weights, const dnnl::engine& engine, WeightCache& cache)
      : n_(batch), weights_(weights), engine_(engine), weight_cache_(cache) {
    const std::vector<UnitShape>& shapes = weights.folded->shapes;
    input_ = NewTensor(kChipSize, kChipSize, 3, DataType::u8, 1.f / 256);
    const UnitShape& first = shapes[0];
    Tensor conv0 = NewTensor(OutSize(kChipSize, first), OutSize(kChipSize, first), first.out,
                             DataType::u8, weights.act_scales[0]);
    AddConv(0, input_, conv0, /*sum=*/false, /*relu=*/true);
    Tensor x =
        NewTensor((conv0.h - 3) / 2 + 1, (conv0.w - 3) / 2 + 1, conv0.c, DataType::u8, conv0.scale);
    steps_.push_back(MaxPool3x3Stride2Step(engine, Md(conv0), conv0.data, Md(x), x.data));
    size_t unit = 1;
    for (const BlockShape& b : kBlocks) {
      const UnitShape& s1 = shapes[unit];
      Tensor a = NewTensor(OutSize(x.h, s1), OutSize(x.w, s1), s1.out, DataType::u8,
                           weights.act_scales[unit]);
      AddConv(unit, x, a, false, true);
      if (!b.down) {
        AddConv(unit + 1, a, x, /*sum=*/true, true);  // x += conv(a), in place, rescaled
        x.scale = weights.act_scales[unit + 1];
      } else {
        Tensor m = NewTensor(a.h, a.w, a.c, DataType::f32, 1.f);
        AddConv(unit + 1, a, m, false, false);
        const int hs = (x.h - 2) / 2 + 1, ws = (x.w - 2) / 2 + 1;
        Tensor sum = NewTensor(std::max(m.h, hs), std::max(m.w, ws), std::max(m.c, x.c),
                               DataType::u8, weights.act_scales[unit + 1]);
        steps_.push_back([this, m, x, sum](dnnl::stream& stream) {
          stream.wait();
          AddDownsampled(m, x, sum);
        });
        x = sum;
      }
      unit += 2;
    }
    last_ = x;
  }

  // The pixels as they are, RGB: the first convolution's bias holds the input layer.
  void Fill(int index, const cv::Mat& chip) {
    uint8_t* dst = input_.u8() + static_cast<size_t>(index) * kChipSize * kChipSize * 3;
    for (int r = 0; r < kChipSize; ++r) {
      std::memcpy(dst + r * kChipSize * 3, chip.ptr<uint8_t>(r), kChipSize * 3);
    }
  }

  void Run(dnnl::stream& stream, Embedding* out) {
    for (auto& step : steps_) step(stream);
    stream.wait();
    const size_t per_chip = static_cast<size_t>(last_.h) * last_.w * last_.c;
    for (int i = 0; i < n_; ++i) {
      PoolAndFc(last_.u8() + i * per_chip, last_.h * last_.w, kFcInputs, last_.scale,
                weights_.folded->fc, out[i]);
    }
  }

 private:
  Tensor NewTensor(int h, int w, int c, DataType type, float scale) {
    const size_t bytes = static_cast<size_t>(n_) * h * w * c * (type == DataType::f32 ? 4 : 1);
    buffers_.emplace_back(std::aligned_alloc(64, (bytes + 63) / 64 * 64), &std::free);
    if (!buffers_.back()) throw std::bad_alloc();
    return {h, w, c, type, buffers_.back().get(), scale};
  }

  memory::desc Md(const Tensor& t) const {
    return memory::desc({n_, t.c, t.h, t.w}, t.type, Tag::nhwc);
  }

  // The folded filters of `unit` quantized to s8 in the layout `want`, once per layout, shared by
  // every plan of this network.
  memory WeightsFor(size_t unit, const memory::desc& want) {
    for (auto& [desc, mem] : weight_cache_[unit]) {
      if (desc == want) return mem;
    }
    const UnitShape& s = weights_.folded->shapes[unit];
    memory user({{s.out, s.in, s.kernel, s.kernel}, DataType::f32, Tag::oihw}, engine_,
                const_cast<float*>(weights_.folded->filters[unit].data()));
    memory mem(want, engine_);
    std::vector<float> inverse;
    for (float ws : weights_.units[unit].weight_scales) inverse.push_back(1.f / ws);
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 0, inverse);  // per output channel (dimension 0 of OIHW)
    dnnl::stream stream(engine_);
    dnnl::reorder(dnnl::reorder::primitive_desc(user, mem, attr)).execute(stream, user, mem);
    stream.wait();
    weight_cache_[unit].emplace_back(want, mem);
    return mem;
  }

  void AddConv(size_t unit, const Tensor& src, const Tensor& dst, bool sum, bool relu) {
    const UnitShape& s = weights_.folded->shapes[unit];
    const QuantizedUnit& q = weights_.units[unit];
    const memory::desc any_weights({s.out, s.in, s.kernel, s.kernel}, DataType::s8, Tag::any);
    const memory::desc bias_md({s.out}, DataType::f32, Tag::x);
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference,
                                         dnnl::algorithm::convolution_direct, Md(src), any_weights,
                                         bias_md, Md(dst), {s.stride, s.stride}, {s.pad(), s.pad()},
                                         {s.pad(), s.pad()});
    dnnl::post_ops ops;
    if (sum) ops.append_sum(q.sum_scale);
    if (relu) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, q.output_scales);  // per output channel (dimension 1 of NCHW)
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // per plan: clones run concurrently
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine_);
    dnnl::convolution_forward prim(pd);
    memory weights = WeightsFor(unit, pd.weights_desc());
    memory bias(bias_md, engine_, const_cast<float*>(q.bias.data()));
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

  // out = relu(m + avgpool2x2(x)), each read as zero outside its own shape (dlib's add_prev),
  // m in f32, x and out in u8 with their scales. Rounds half up (v >= 0 after the ReLU): the
  // libm rounding call per value made this loop a sixth of the network's time.
  void AddDownsampled(const Tensor& m, const Tensor& x, const Tensor& out) const {
    const int hs = (x.h - 2) / 2 + 1, ws = (x.w - 2) / 2 + 1;
    const float x_scale = x.scale / 4.f, inv_out = 1.f / out.scale;
    const int mc = std::min(m.c, out.c), xc = std::min(x.c, out.c);
    std::vector<float> v(out.c);
    for (int i = 0; i < n_; ++i) {
      const float* mi = m.f32() + static_cast<size_t>(i) * m.h * m.w * m.c;
      const uint8_t* xi = x.u8() + static_cast<size_t>(i) * x.h * x.w * x.c;
      uint8_t* oi = out.u8() + static_cast<size_t>(i) * out.h * out.w * out.c;
      for (int y = 0; y < out.h; ++y) {
        for (int xx = 0; xx < out.w; ++xx) {
          std::fill(v.begin(), v.end(), 0.f);
          if (y < m.h && xx < m.w) {
            const float* mp = mi + (y * m.w + xx) * m.c;
            for (int c = 0; c < mc; ++c) v[c] = mp[c];
          }
          if (y < hs && xx < ws) {
            const uint8_t* s0 = xi + ((2 * y) * x.w + 2 * xx) * x.c;
            const uint8_t* s1 = s0 + x.w * x.c;
            for (int c = 0; c < xc; ++c) {
              v[c] += (s0[c] + s0[c + x.c] + s1[c] + s1[c + x.c]) * x_scale;
            }
          }
          uint8_t* o = oi + (y * out.w + xx) * out.c;
          for (int c = 0; c < out.c; ++c) {
            o[c] = static_cast<uint8_t>(std::min(std::max(v[c], 0.f) * inv_out + 0.5f, 255.f));
          }
        }
      }
    }
  }

  const int n_;
  const Int8Weights& weights_;
  const dnnl::engine& engine_;
  WeightCache& weight_cache_;
  std::vector<std::unique_ptr<void, decltype(&std::free)>> buffers_;
  std::vector<std::function<void(dnnl::stream&)>> steps_;
  Tensor input_, last_;
};

class Int8FaceResNet final : public FaceResNet {
 public:
  explicit Int8FaceResNet(std::shared_ptr<const Int8Weights> weights)
      : weights_(std::move(weights)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_),
        weight_cache_(weights_->units.size()) {}

  std::unique_ptr<FaceResNet> Clone() const override {
    return std::make_unique<Int8FaceResNet>(weights_);
  }

  std::vector<Embedding> Embed(const std::vector<cv::Mat>& chips) override {
    return EmbedInBatches(
        chips, plans_,
        [this](int batch) {
          return std::make_unique<Int8Plan>(batch, *weights_, engine_, weight_cache_);
        },
        stream_);
  }

 private:
  std::shared_ptr<const Int8Weights> weights_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  WeightCache weight_cache_;
  std::map<int, std::unique_ptr<Int8Plan>> plans_;
};

// VNNI (AVX512-VNNI or AVX-VNNI): without it oneDNN's int8 convolutions multiply u8 x s8 pairs
// into 16 bits (vpmaddubsw), and on this network the descriptors come out up to 0.49 from fp32's
// (measured with ONEDNN_MAX_CPU_ISA=AVX2 and AVX512_CORE): refused rather than used.
bool HasVnni(dnnl::cpu_isa isa) {
  return IsaHas(isa, dnnl::cpu_isa::avx512_core_vnni) || IsaHas(isa, dnnl::cpu_isa::avx2_vnni);
}

}  // namespace

absl::StatusOr<std::unique_ptr<FaceResNet>> MakeOneDnnInt8FaceResNet(
    const FaceResNetParameters& params, const Int8Calibration& calibration) {
  if (const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa(); !HasVnni(isa)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "onednn-int8: this CPU has no VNNI (oneDNN ISA 0x", absl::Hex(static_cast<unsigned>(isa)),
        "), without which oneDNN's int8 convolutions are not accurate for this network; use "
        "backend onednn"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const FoldedWeights> folded, Fold(params));
  ASSIGN_OR_RETURN(std::shared_ptr<const Int8Weights> quantized,
                   Quantize(std::move(folded), calibration));
  try {
    auto net = std::make_unique<Int8FaceResNet>(std::move(quantized));
    // Compile the single-chip plan now, so a oneDNN failure is a load error, not a crash later.
    std::vector<cv::Mat> probe(1, cv::Mat(kChipSize, kChipSize, CV_8UC3, cv::Scalar(0, 0, 0)));
    if (std::isnan(net->Embed(probe)[0][0])) {  // what Embed answers when oneDNN threw
      return absl::InternalError("onednn-int8: oneDNN cannot run the int8 network here");
    }
    return std::unique_ptr<FaceResNet>(std::move(net));
  } catch (const dnnl::error& e) {
    return absl::InternalError(absl::StrCat("onednn-int8: ", e.what()));
  }
}

}  // namespace fedface
