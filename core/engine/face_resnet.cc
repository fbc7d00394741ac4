// The only translation unit that includes dlib/dnn.h (it compiles slowly): the face ResNet, its
// conversion from face-api's tfjs weights, and inference.
#include "core/engine/face_resnet.h"

#include <dlib/dnn.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedface {
namespace {

// dlib's dnn_face_recognition_ex network ("anet_type"), layer for layer.
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = dlib::add_prev1<block<N, BN, 1, dlib::tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = dlib::add_prev2<dlib::avg_pool<
    2, 2, 2, 2, dlib::skip1<dlib::tag2<block<N, BN, 2, dlib::tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<dlib::con<N, 3, 3, 1, 1, dlib::relu<BN<dlib::con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET>
using ares = dlib::relu<residual<block, N, dlib::affine, SUBNET>>;
template <int N, typename SUBNET>
using ares_down = dlib::relu<residual_down<block, N, dlib::affine, SUBNET>>;

template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = dlib::loss_metric<dlib::fc_no_bias<
    128, dlib::avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<dlib::max_pool<
             3, 3, 2, 2,
             dlib::relu<dlib::affine<dlib::con<32, 7, 7, 2, 2,
                                               dlib::input_rgb_image_sized<kChipSize>>>>>>>>>>>>>;

template <typename T> struct IsCon : std::false_type {};
template <long F, long R, long C, int SY, int SX, int PY, int PX>
struct IsCon<dlib::con_<F, R, C, SY, SX, PY, PX>> : std::true_type {};
template <typename T> struct IsFc : std::false_type {};
template <unsigned long N, dlib::fc_bias_mode M>
struct IsFc<dlib::fc_<N, M>> : std::true_type {};

// Pointers to the parameterised layers of one network, in input-to-output order.
struct ParamLayers {
  std::vector<dlib::tensor*> conv_params;  // filters (OIHW) followed by biases
  std::vector<dlib::affine_*> affines;
  dlib::tensor* fc_params = nullptr;  // (inputs, outputs), row-major
};

ParamLayers CollectParamLayers(anet_type& net) {
  std::vector<std::pair<size_t, dlib::tensor*>> convs;
  std::vector<std::pair<size_t, dlib::affine_*>> affines;
  ParamLayers out;
  dlib::visit_computational_layers(net, [&](size_t idx, auto& layer) {
    using L = std::decay_t<decltype(layer)>;
    if constexpr (IsCon<L>::value) {
      convs.emplace_back(idx, &layer.get_layer_params());
    } else if constexpr (std::is_same_v<L, dlib::affine_>) {
      affines.emplace_back(idx, &layer);
    } else if constexpr (IsFc<L>::value) {
      out.fc_params = &layer.get_layer_params();
    }
  });
  // dlib numbers layers from the output (0) towards the input.
  auto by_depth = [](const auto& a, const auto& b) { return a.first > b.first; };
  std::sort(convs.begin(), convs.end(), by_depth);
  std::sort(affines.begin(), affines.end(), by_depth);
  for (auto& [i, t] : convs) out.conv_params.push_back(t);
  for (auto& [i, a] : affines) out.affines.push_back(a);
  return out;
}

// tfjs names of the 29 conv+scale units, in input-to-output order.
std::vector<std::string> TfjsConvUnits() {
  std::vector<std::string> units = {"conv32_down"};
  auto blocks = [&](const std::string& prefix) {
    units.push_back(prefix + "/conv1");
    units.push_back(prefix + "/conv2");
  };
  for (const char* b : {"conv32_1", "conv32_2", "conv32_3", "conv64_down", "conv64_1", "conv64_2",
                        "conv64_3", "conv128_down", "conv128_1", "conv128_2", "conv256_down",
                        "conv256_1", "conv256_2", "conv256_down_out"}) {
    blocks(b);
  }
  return units;
}

dlib::matrix<dlib::rgb_pixel> ToDlibChip(const cv::Mat& chip) {
  dlib::matrix<dlib::rgb_pixel> out(kChipSize, kChipSize);
  for (int r = 0; r < kChipSize; ++r) {
    const uint8_t* row = chip.ptr<uint8_t>(r);
    for (int c = 0; c < kChipSize; ++c) {
      out(r, c) = dlib::rgb_pixel(row[3 * c], row[3 * c + 1], row[3 * c + 2]);
    }
  }
  return out;
}

class DlibFaceResNet final : public FaceResNet {
 public:
  explicit DlibFaceResNet(anet_type net) : net_(std::move(net)) {}

  std::unique_ptr<FaceResNet> Clone() const override {
    return std::make_unique<DlibFaceResNet>(net_);
  }

  std::vector<Embedding> Embed(const std::vector<cv::Mat>& chips) override {
    std::vector<dlib::matrix<dlib::rgb_pixel>> batch;
    batch.reserve(chips.size());
    for (const cv::Mat& chip : chips) batch.push_back(ToDlibChip(chip));
    std::vector<Embedding> out(chips.size());
    if (batch.empty()) return out;
    std::vector<dlib::matrix<float, 0, 1>> vectors = net_(batch, batch.size());
    for (size_t i = 0; i < vectors.size(); ++i) {
      std::copy(vectors[i].begin(), vectors[i].end(), out[i].begin());
    }
    return out;
  }

 private:
  anet_type net_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FaceResNet>> FaceResNet::FromSerialized(std::string_view bytes) {
  anet_type net;
  try {
    std::istringstream in{std::string(bytes)};
    dlib::deserialize(net, in);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights are not a dlib face ResNet: ", e.what()));
  }
  return std::make_unique<DlibFaceResNet>(std::move(net));
}

absl::StatusOr<std::string> FaceResNet::SerializeFromTfjs(
    const std::vector<NamedTensor>& tensors) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const NamedTensor& t : tensors) by_name[t.name] = &t;
  auto find = [&](const std::string& name,
                  size_t expected_size) -> absl::StatusOr<const NamedTensor*> {
    auto it = by_name.find(name);
    if (it == by_name.end()) return absl::NotFoundError(absl::StrCat("tfjs tensor ", name, " missing"));
    if (it->second->values.size() != expected_size) {
      return absl::InvalidArgumentError(absl::StrCat("tfjs tensor ", name, " has ",
                                                     it->second->values.size(), " values, expected ",
                                                     expected_size));
    }
    return it->second;
  };

  anet_type net;
  // Scale layers are per-channel (CONV_MODE); the mode must be set before setup runs.
  ParamLayers layers = CollectParamLayers(net);
  for (dlib::affine_* a : layers.affines) *a = dlib::affine_(dlib::CONV_MODE);
  {
    // One forward pass allocates every parameter tensor at its real shape.
    std::vector<dlib::matrix<dlib::rgb_pixel>> dummy(1, dlib::matrix<dlib::rgb_pixel>(kChipSize, kChipSize));
    for (auto& p : dummy[0]) p = dlib::rgb_pixel(0, 0, 0);
    net(dummy);
  }
  layers = CollectParamLayers(net);
  const std::vector<std::string> units = TfjsConvUnits();
  if (layers.conv_params.size() != units.size() || layers.affines.size() != units.size() ||
      layers.fc_params == nullptr) {
    return absl::InternalError("dlib face ResNet layout does not match the tfjs model");
  }

  for (size_t u = 0; u < units.size(); ++u) {
    const std::string prefix = u == 0 ? units[u] : units[u];
    dlib::tensor& params = *layers.conv_params[u];
    dlib::affine_& affine = *layers.affines[u];
    const long out_ch = affine.get_gamma().size();
    // con_ params hold out_ch filters of (in_ch, kh, kw), then out_ch biases.
    const long filter_size = (params.size() - out_ch) / out_ch;
    const long kernel = (u == 0) ? 7 : 3;
    const long in_ch = filter_size / (kernel * kernel);
    auto filters = find(prefix + "/conv/filters", static_cast<size_t>(filter_size * out_ch));
    if (!filters.ok()) return filters.status();
    auto bias = find(prefix + "/conv/bias", out_ch);
    if (!bias.ok()) return bias.status();
    auto scale_w = find(prefix + "/scale/weights", out_ch);
    if (!scale_w.ok()) return scale_w.status();
    auto scale_b = find(prefix + "/scale/biases", out_ch);
    if (!scale_b.ok()) return scale_b.status();
    if ((*filters)->shape != std::vector<int>{int(kernel), int(kernel), int(in_ch), int(out_ch)}) {
      return absl::InvalidArgumentError(absl::StrCat("tfjs tensor ", prefix,
                                                     "/conv/filters has an unexpected shape"));
    }

    float* dst = params.host();
    const std::vector<float>& hwio = (*filters)->values;
    // tfjs filters are HWIO; dlib's are OIHW.
    for (long o = 0; o < out_ch; ++o)
      for (long i = 0; i < in_ch; ++i)
        for (long h = 0; h < kernel; ++h)
          for (long w = 0; w < kernel; ++w)
            dst[((o * in_ch + i) * kernel + h) * kernel + w] =
                hwio[((h * kernel + w) * in_ch + i) * out_ch + o];
    std::copy((*bias)->values.begin(), (*bias)->values.end(), dst + filter_size * out_ch);

    auto gamma = affine.get_gamma();
    auto beta = affine.get_beta();
    std::copy((*scale_w)->values.begin(), (*scale_w)->values.end(), gamma.host());
    std::copy((*scale_b)->values.begin(), (*scale_b)->values.end(), beta.host());
  }

  auto fc = find("fc", static_cast<size_t>(layers.fc_params->size()));
  if (!fc.ok()) return fc.status();
  std::copy((*fc)->values.begin(), (*fc)->values.end(), layers.fc_params->host());

  net.clean();
  std::ostringstream out;
  dlib::serialize(net, out);
  return out.str();
}

}  // namespace fedface
