// The only translation unit that includes dlib/dnn.h (it compiles slowly): the face ResNet, its
// conversion from face-api's tfjs weights, and inference.
#include "core/engine/face_resnet.h"

#include <dlib/dnn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"
#include "core/engine/face_resnet_testing.h"
#include "core/engine/weights_prewalk.h"

namespace fedface {
namespace {

// dlib's dnn_face_recognition_ex network ("anet_type"), layer for layer.
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = dlib::add_prev1<block<N, BN, 1, dlib::tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = dlib::add_prev2<
    dlib::avg_pool<2, 2, 2, 2, dlib::skip1<dlib::tag2<block<N, BN, 2, dlib::tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block =
    BN<dlib::con<N, 3, 3, 1, 1, dlib::relu<BN<dlib::con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET>
using ares = dlib::relu<residual<block, N, dlib::affine, SUBNET>>;
template <int N, typename SUBNET>
using ares_down = dlib::relu<residual_down<block, N, dlib::affine, SUBNET>>;

template <typename SUBNET>
using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET>
using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET>
using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET>
using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET>
using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = dlib::loss_metric<dlib::fc_no_bias<
    128, dlib::avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<dlib::max_pool<
             3, 3, 2, 2,
             dlib::relu<dlib::affine<
                 dlib::con<32, 7, 7, 2, 2, dlib::input_rgb_image_sized<kChipSize>>>>>>>>>>>>>;

template <typename T>
struct IsCon : std::false_type {};
template <long F, long R, long C, int SY, int SX, int PY, int PX>
struct IsCon<dlib::con_<F, R, C, SY, SX, PY, PX>> : std::true_type {};
template <typename T>
struct IsFc : std::false_type {};
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

// dlib's messages may span lines; errors here are one line.
std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// A tensor's dimensions as dlib stores them (num_samples x k x nr x nc).
struct TensorShape {
  long long n = 0, k = 0, nr = 0, nc = 0;

  template <typename T>
  static TensorShape Of(const T& t) {
    return {t.num_samples(), t.k(), t.nr(), t.nc()};
  }
  friend bool operator==(const TensorShape&, const TensorShape&) = default;
  std::string ToString() const { return absl::StrCat(n, "x", k, "x", nr, "x", nc); }
};

// What one computational layer holds that the architecture fixes (parameter tensor, the views
// through which the layer reads it, its mode flags), and where its parameter values are.
struct LayerFacts {
  size_t index = 0;  // dlib's layer index (0 at the loss), as `std::cout << net` prints it
  const char* kind = "other";
  size_t param_count = 0;
  TensorShape params;
  std::vector<std::pair<std::string, TensorShape>> views;
  std::vector<std::pair<std::string, std::string>> settings;
  const float* values = nullptr;  // param_count values, inside the layer (con_, fc_)
  dlib::resizable_tensor owned;   // affine_ keeps its parameters private: a copy of them

  const float* Values() const {
    const dlib::tensor& o = owned;
    return owned.size() > 0 ? o.host() : values;
  }
};

// `layer` serialized by dlib with its parameter tensor emptied for the duration (so that the
// header, which holds the views and flags, is read without copying the values).
template <typename L>
std::string HeaderOf(L& layer) {
  auto& params = dynamic_cast<dlib::resizable_tensor&>(layer.get_layer_params());
  dlib::resizable_tensor held;
  held.swap(params);
  std::ostringstream out;
  try {
    serialize(layer, out);  // a friend of the layer: found by argument-dependent lookup
  } catch (...) {
    held.swap(params);
    throw;
  }
  held.swap(params);
  return out.str();
}

void SetParams(LayerFacts& f, const dlib::tensor& params) {
  f.param_count = params.size();
  f.params = TensorShape::Of(params);
}

template <typename L>
void Describe(L& /*layer*/, LayerFacts& /*facts*/) {}  // no parameters

template <long F, long R, long C, int SY, int SX, int PY, int PX>
void Describe(dlib::con_<F, R, C, SY, SX, PY, PX>& layer, LayerFacts& f) {
  f.kind = "con";
  const dlib::tensor& params = layer.get_layer_params();
  SetParams(f, params);
  f.values = params.host();
  // Field order of con_'s serialize() in dlib 19.24 ("con_5").
  std::istringstream in(HeaderOf(layer));
  std::string version;
  dlib::resizable_tensor no_values;
  long num_filters = 0, nr = 0, nc = 0;
  int stride_y = 0, stride_x = 0, padding_y = 0, padding_x = 0;
  dlib::alias_tensor filters, biases;
  double multipliers[4];
  bool use_bias = true;
  dlib::deserialize(version, in);
  if (version != "con_5") throw dlib::serialization_error("unexpected con_ version " + version);
  dlib::deserialize(no_values, in);
  dlib::deserialize(num_filters, in);
  dlib::deserialize(nr, in);
  dlib::deserialize(nc, in);
  dlib::deserialize(stride_y, in);
  dlib::deserialize(stride_x, in);
  dlib::deserialize(padding_y, in);
  dlib::deserialize(padding_x, in);
  dlib::deserialize(filters, in);
  dlib::deserialize(biases, in);
  for (double& m : multipliers) dlib::deserialize(m, in);
  dlib::deserialize(use_bias, in);
  f.views = {{"filters", TensorShape::Of(filters)}, {"biases", TensorShape::Of(biases)}};
  f.settings = {{"num_filters", absl::StrCat(num_filters)},
                {"use_bias", use_bias ? "true" : "false"}};
}

template <unsigned long N, dlib::fc_bias_mode M>
void Describe(dlib::fc_<N, M>& layer, LayerFacts& f) {
  f.kind = "fc";
  const dlib::tensor& params = layer.get_layer_params();
  SetParams(f, params);
  f.values = params.host();
  // Field order of fc_'s serialize() in dlib 19.24 ("fc_3").
  std::istringstream in(HeaderOf(layer));
  std::string version;
  dlib::resizable_tensor no_values;
  unsigned long num_outputs = 0, num_inputs = 0;
  dlib::alias_tensor weights, biases;
  int bias_mode = 0;
  double multipliers[4];
  bool use_bias = true;
  dlib::deserialize(version, in);
  if (version != "fc_3") throw dlib::serialization_error("unexpected fc_ version " + version);
  dlib::deserialize(num_outputs, in);
  dlib::deserialize(num_inputs, in);
  dlib::deserialize(no_values, in);
  dlib::deserialize(weights, in);
  dlib::deserialize(biases, in);
  dlib::deserialize(bias_mode, in);
  for (double& m : multipliers) dlib::deserialize(m, in);
  dlib::deserialize(use_bias, in);
  f.views = {{"weights", TensorShape::Of(weights)}, {"biases", TensorShape::Of(biases)}};
  f.settings = {{"num_outputs", absl::StrCat(num_outputs)},
                {"num_inputs", absl::StrCat(num_inputs)},
                {"use_bias", use_bias ? "true" : "false"}};
}

void Describe(dlib::affine_& layer, LayerFacts& f) {
  f.kind = "affine";
  // affine_ exposes no parameter tensor (get_layer_params() is an empty one) and get_gamma()
  // asserts on a short tensor, so read its (small) serialization: "affine_2" in dlib 19.24.
  std::ostringstream out;
  serialize(layer, out);  // a friend of the layer: found by argument-dependent lookup
  std::istringstream in(out.str());
  std::string version;
  dlib::alias_tensor gamma, beta;
  int mode = 0;
  bool disabled = false;
  dlib::deserialize(version, in);
  if (version != "affine_2")
    throw dlib::serialization_error("unexpected affine_ version " + version);
  dlib::deserialize(f.owned, in);
  dlib::deserialize(gamma, in);
  dlib::deserialize(beta, in);
  dlib::deserialize(mode, in);
  dlib::deserialize(disabled, in);
  SetParams(f, f.owned);
  f.views = {{"gamma", TensorShape::Of(gamma)}, {"beta", TensorShape::Of(beta)}};
  f.settings = {{"mode", mode == dlib::CONV_MODE ? "conv" : absl::StrCat(mode)},
                {"disabled", disabled ? "true" : "false"}};
}

// Every computational layer of `net`, output end first (dlib's order).
std::vector<LayerFacts> DescribeLayers(anet_type& net) {
  std::vector<LayerFacts> out;
  dlib::visit_computational_layers(net, [&](size_t idx, auto& layer) {
    LayerFacts f;
    f.index = idx;
    Describe(layer, f);
    out.push_back(std::move(f));
  });
  return out;
}

// The architecture as this build compiles it, set up: scale layers per channel, every parameter
// tensor allocated at its real shape by one forward pass on a zero chip (random values).
anet_type SetUpNetwork() {
  anet_type net;
  // Scale layers are per-channel (CONV_MODE); the mode must be set before setup runs.
  ParamLayers layers = CollectParamLayers(net);
  for (dlib::affine_* a : layers.affines) *a = dlib::affine_(dlib::CONV_MODE);
  std::vector<dlib::matrix<dlib::rgb_pixel>> zero(
      1, dlib::matrix<dlib::rgb_pixel>(kChipSize, kChipSize));
  for (auto& p : zero[0]) p = dlib::rgb_pixel(0, 0, 0);
  net(zero);
  net.clean();
  return net;
}

struct Architecture {
  anet_type net;
  std::vector<LayerFacts> layers;
};

// Built once per process (about one forward pass); read-only afterwards.
const Architecture& TheArchitecture() {
  static const Architecture* const architecture = [] {
    auto* a = new Architecture{SetUpNetwork(), {}};
    a->layers = DescribeLayers(a->net);
    return a;
  }();
  return *architecture;
}

std::string LayerName(const LayerFacts& f) {
  return absl::StrCat("weights: layer ", f.index, " (", f.kind, "): ");
}

absl::Status CompareWithArchitecture(const LayerFacts& need, const LayerFacts& found) {
  const std::string name = LayerName(found);
  if (found.param_count != need.param_count) {
    return absl::InvalidArgumentError(absl::StrCat(name, "parameter tensor has ", found.param_count,
                                                   " values, the architecture needs ",
                                                   need.param_count));
  }
  if (!(found.params == need.params)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, "parameter tensor is ", found.params.ToString(),
                     ", the architecture needs ", need.params.ToString()));
  }
  for (size_t i = 0; i < need.views.size() && i < found.views.size(); ++i) {
    if (!(found.views[i].second == need.views[i].second)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, found.views[i].first, " are ", found.views[i].second.ToString(),
                       ", the architecture needs ", need.views[i].second.ToString()));
    }
  }
  for (size_t i = 0; i < need.settings.size() && i < found.settings.size(); ++i) {
    if (found.settings[i].second != need.settings[i].second) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, found.settings[i].first, " is ", found.settings[i].second,
                       ", the architecture needs ", need.settings[i].second));
    }
  }
  const float* values = found.Values();
  for (size_t i = 0; i < found.param_count; ++i) {
    if (!std::isfinite(values[i])) {
      return absl::InvalidArgumentError(absl::StrCat(name, "parameter ", i, " of ",
                                                     found.param_count, " is ", values[i],
                                                     " (every parameter must be finite)"));
    }
  }
  return absl::OkStatus();
}

template <typename L>
void CopyValues(const LayerFacts& /*from*/, L& /*to*/) {}  // no parameters

template <long F, long R, long C, int SY, int SX, int PY, int PX>
void CopyValues(const LayerFacts& from, dlib::con_<F, R, C, SY, SX, PY, PX>& to) {
  std::copy(from.Values(), from.Values() + from.param_count, to.get_layer_params().host());
}

template <unsigned long N, dlib::fc_bias_mode M>
void CopyValues(const LayerFacts& from, dlib::fc_<N, M>& to) {
  std::copy(from.Values(), from.Values() + from.param_count, to.get_layer_params().host());
}

void CopyValues(const LayerFacts& from, dlib::affine_& to) {
  auto gamma = to.get_gamma();
  auto beta = to.get_beta();
  std::copy(from.Values(), from.Values() + gamma.size(), gamma.host());
  std::copy(from.Values() + gamma.size(), from.Values() + gamma.size() + beta.size(), beta.host());
}

// Checks the deserialized `loaded` against the architecture, layer by layer (every parameter
// tensor's count and dimensions, the views that read it, the layer's flags, every value finite;
// the input layer's channel means finite and in [0, 255]). On success returns a copy of the
// architecture's own set-up network holding `loaded`'s parameter values: nothing else from the
// stream (set-up flags, cached tensors, multipliers, the loss layer's settings) is kept, so no
// layer re-initializes itself on the first forward pass.
absl::StatusOr<anet_type> RebuildFromCheckedParameters(anet_type& loaded) {
  const Architecture& architecture = TheArchitecture();
  std::vector<LayerFacts> found;
  try {
    found = DescribeLayers(loaded);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("weights: reading layer shapes: ", OneLine(e.what())));
  }
  if (found.size() != architecture.layers.size()) {
    return absl::InternalError("weights: the network has another number of layers");
  }
  for (size_t i = 0; i < found.size(); ++i) {
    RETURN_IF_ERROR(CompareWithArchitecture(architecture.layers[i], found[i]));
  }
  const auto& input = dlib::input_layer(loaded);
  const std::pair<const char*, float> means[] = {{"red", input.get_avg_red()},
                                                 {"green", input.get_avg_green()},
                                                 {"blue", input.get_avg_blue()}};
  for (const auto& [channel, mean] : means) {
    if (!(mean >= 0.f && mean <= 255.f)) {  // false for NaN too
      return absl::InvalidArgumentError(absl::StrCat("weights: input layer: the mean ", channel,
                                                     " value is ", mean, ", must be in [0, 255]"));
    }
  }

  anet_type net = architecture.net;
  size_t next = 0;
  dlib::visit_computational_layers(net,
                                   [&](size_t, auto& layer) { CopyValues(found[next++], layer); });
  dlib::input_layer(net) = dlib::input_rgb_image_sized<kChipSize>(
      input.get_avg_red(), input.get_avg_green(), input.get_avg_blue());
  return net;
}

}  // namespace

namespace {

// Pre-walk, dlib's deserialize, and the architecture check (see FromSerialized in face_resnet.h).
absl::StatusOr<anet_type> LoadChecked(std::string_view bytes) {
  // dlib trusts the stream (a negative tensor dimension crashes it, a huge one allocates what it
  // says): nothing reaches dlib that the pre-walk has not read as this network.
  RETURN_IF_ERROR(PrewalkFaceResNetWeights(bytes));
  anet_type loaded;
  std::istringstream in{std::string(bytes)};
  try {
    dlib::deserialize(loaded, in);
  } catch (const std::exception& e) {
    // dlib reports a short read as a failed read; the position tells a truncation apart.
    const std::streamoff at = in.rdbuf()->pubseekoff(0, std::ios::cur, std::ios::in);
    if (at >= 0 && static_cast<size_t>(at) >= bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("weights: the network ends early (",
                                                     bytes.size(),
                                                     " bytes, truncated?): ", OneLine(e.what())));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("weights are not a dlib face ResNet: ", OneLine(e.what())));
  }
  const std::streamoff end = in.rdbuf()->pubseekoff(0, std::ios::cur, std::ios::in);
  if (end < 0) return absl::InternalError("weights: cannot tell where the network ends");
  if (static_cast<size_t>(end) != bytes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("weights: ", bytes.size() - static_cast<size_t>(end),
                     " trailing bytes after the network (which ends at byte ", end, ")"));
  }
  return RebuildFromCheckedParameters(loaded);
}

std::vector<float> CopyOf(const dlib::tensor& t) { return {t.host(), t.host() + t.size()}; }

}  // namespace

absl::StatusOr<std::unique_ptr<FaceResNet>> FaceResNet::FromSerialized(std::string_view bytes) {
  ASSIGN_OR_RETURN(anet_type checked, LoadChecked(bytes));
  return std::make_unique<DlibFaceResNet>(std::move(checked));
}

absl::StatusOr<FaceResNetParameters> FaceResNet::CheckedParameters(std::string_view bytes) {
  ASSIGN_OR_RETURN(anet_type checked, LoadChecked(bytes));
  ParamLayers layers = CollectParamLayers(checked);
  if (layers.conv_params.size() != layers.affines.size() || layers.fc_params == nullptr) {
    return absl::InternalError("weights: the network's parameter layers do not pair up");
  }
  FaceResNetParameters out;
  for (size_t u = 0; u < layers.conv_params.size(); ++u) {
    const dlib::tensor& params = *layers.conv_params[u];
    dlib::affine_& affine = *layers.affines[u];
    const size_t channels = affine.get_gamma().size();
    if (params.size() <= channels) return absl::InternalError("weights: a conv layer is empty");
    FaceResNetParameters::ConvUnit unit;
    unit.filters.assign(params.host(), params.host() + (params.size() - channels));
    unit.bias.assign(params.host() + (params.size() - channels), params.host() + params.size());
    unit.gamma = CopyOf(affine.get_gamma());
    unit.beta = CopyOf(affine.get_beta());
    out.convs.push_back(std::move(unit));
  }
  out.fc = CopyOf(*layers.fc_params);
  const auto& input = dlib::input_layer(checked);
  out.mean_rgb[0] = input.get_avg_red();
  out.mean_rgb[1] = input.get_avg_green();
  out.mean_rgb[2] = input.get_avg_blue();
  return out;
}

absl::StatusOr<std::string> FaceResNet::SerializeFromTfjs(const std::vector<NamedTensor>& tensors) {
  std::map<std::string, const NamedTensor*> by_name;
  for (const NamedTensor& t : tensors) by_name[t.name] = &t;
  auto find = [&](const std::string& name,
                  size_t expected_size) -> absl::StatusOr<const NamedTensor*> {
    auto it = by_name.find(name);
    if (it == by_name.end())
      return absl::NotFoundError(absl::StrCat("tfjs tensor ", name, " missing"));
    if (it->second->values.size() != expected_size) {
      return absl::InvalidArgumentError(absl::StrCat("tfjs tensor ", name, " has ",
                                                     it->second->values.size(),
                                                     " values, expected ", expected_size));
    }
    return it->second;
  };

  anet_type net = TheArchitecture().net;  // every parameter tensor at its real shape
  ParamLayers layers = CollectParamLayers(net);
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
    ASSIGN_OR_RETURN(auto filters,
                     find(prefix + "/conv/filters", static_cast<size_t>(filter_size * out_ch)));
    ASSIGN_OR_RETURN(auto bias, find(prefix + "/conv/bias", out_ch));
    ASSIGN_OR_RETURN(auto scale_w, find(prefix + "/scale/weights", out_ch));
    ASSIGN_OR_RETURN(auto scale_b, find(prefix + "/scale/biases", out_ch));
    if (filters->shape != std::vector<int>{int(kernel), int(kernel), int(in_ch), int(out_ch)}) {
      return absl::InvalidArgumentError(
          absl::StrCat("tfjs tensor ", prefix, "/conv/filters has an unexpected shape"));
    }

    float* dst = params.host();
    const std::vector<float>& hwio = filters->values;
    // tfjs filters are HWIO; dlib's are OIHW.
    for (long o = 0; o < out_ch; ++o)
      for (long i = 0; i < in_ch; ++i)
        for (long h = 0; h < kernel; ++h)
          for (long w = 0; w < kernel; ++w)
            dst[((o * in_ch + i) * kernel + h) * kernel + w] =
                hwio[((h * kernel + w) * in_ch + i) * out_ch + o];
    std::copy(bias->values.begin(), bias->values.end(), dst + filter_size * out_ch);

    auto gamma = affine.get_gamma();
    auto beta = affine.get_beta();
    std::copy(scale_w->values.begin(), scale_w->values.end(), gamma.host());
    std::copy(scale_b->values.begin(), scale_b->values.end(), beta.host());
  }

  ASSIGN_OR_RETURN(auto fc, find("fc", static_cast<size_t>(layers.fc_params->size())));
  std::copy(fc->values.begin(), fc->values.end(), layers.fc_params->host());

  net.clean();
  std::ostringstream out;
  dlib::serialize(net, out);
  return out.str();
}

}  // namespace fedface

namespace fedface::testing_only {

absl::StatusOr<std::string> MisshapedSerialization(std::string_view serialized, Misshape which) {
  try {
    anet_type net;
    std::istringstream in{std::string(serialized)};
    dlib::deserialize(net, in);
    ParamLayers layers = CollectParamLayers(net);
    if (layers.conv_params.size() < 2 || layers.affines.empty() || layers.fc_params == nullptr) {
      return absl::InternalError("not the face ResNet");
    }
    // dlib layer index of the first 3x3 con layer (input order 1): visited second to last.
    size_t first_3x3 = 0;
    dlib::visit_computational_layers(net, [&](size_t idx, auto& layer) {
      if constexpr (IsCon<std::decay_t<decltype(layer)>>::value) {
        if (&layer.get_layer_params() == layers.conv_params[1]) first_3x3 = idx;
      }
    });
    switch (which) {
      case Misshape::kConvMissingValues:
        dynamic_cast<dlib::resizable_tensor&>(*layers.conv_params[1]).set_size(9216);
        break;
      case Misshape::kAffineNeverSetUp:
        *layers.affines[0] = dlib::affine_(dlib::CONV_MODE);
        break;
      case Misshape::kFcMissingOutput:
        dynamic_cast<dlib::resizable_tensor&>(*layers.fc_params).set_size(256 * 127);
        break;
      case Misshape::kConvFiltersReshaped:
        dlib::visit_computational_layers(net, [&](size_t idx, auto& layer) {
          if constexpr (IsCon<std::decay_t<decltype(layer)>>::value) {
            if (idx != first_3x3) return;
            // Rewrite con_'s serialization ("con_5", see Describe) with another filters view.
            std::stringstream old_form, new_form;
            serialize(layer, old_form);
            std::string version;
            dlib::resizable_tensor params;
            long num_filters, nr, nc;
            int stride_y, stride_x, padding_y, padding_x;
            dlib::alias_tensor filters, biases;
            double multipliers[4];
            bool use_bias;
            dlib::deserialize(version, old_form);
            dlib::deserialize(params, old_form);
            dlib::deserialize(num_filters, old_form);
            dlib::deserialize(nr, old_form);
            dlib::deserialize(nc, old_form);
            dlib::deserialize(stride_y, old_form);
            dlib::deserialize(stride_x, old_form);
            dlib::deserialize(padding_y, old_form);
            dlib::deserialize(padding_x, old_form);
            dlib::deserialize(filters, old_form);
            dlib::deserialize(biases, old_form);
            for (double& m : multipliers) dlib::deserialize(m, old_form);
            dlib::deserialize(use_bias, old_form);
            filters = dlib::alias_tensor(filters.num_samples(), filters.k() - 1, filters.nr(),
                                         filters.nc());
            dlib::serialize(version, new_form);
            dlib::serialize(params, new_form);
            dlib::serialize(num_filters, new_form);
            dlib::serialize(nr, new_form);
            dlib::serialize(nc, new_form);
            dlib::serialize(stride_y, new_form);
            dlib::serialize(stride_x, new_form);
            dlib::serialize(padding_y, new_form);
            dlib::serialize(padding_x, new_form);
            dlib::serialize(filters, new_form);
            dlib::serialize(biases, new_form);
            for (double m : multipliers) dlib::serialize(m, new_form);
            dlib::serialize(use_bias, new_form);
            deserialize(layer, new_form);
          }
        });
        break;
    }
    std::ostringstream out;
    dlib::serialize(net, out);
    return out.str();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("MisshapedSerialization: ", OneLine(e.what())));
  }
}

}  // namespace fedface::testing_only
