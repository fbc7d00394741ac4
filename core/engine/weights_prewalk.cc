// dlib 19.24's serialization of the face ResNet, read without dlib. Where each field comes from:
//   integers   dlib/serialize.h pack_int: a control byte (low nibble: how many little-endian
//              magnitude bytes follow, 1..sizeof(T); top bit: negative, signed types only;
//              dlib ignores bits 0x70, this walk refuses them), then the magnitude.
//   strings    an unsigned long length, then the bytes (C strings without their NUL).
//   float/double  float_details: int64 mantissa, int16 exponent (the older text form is refused).
//   bool       one byte, '0' or '1'.
//   tensor     dlib/cuda/tensor.h: resizable_tensor = int version 2, num_samples, k, nr, nc
//              (long long), then num_samples*k*nr*nc little-endian float32; alias_tensor = int
//              version 1 and the four dimensions, no values.
//   network    dlib/dnn/core.h, from the loss inwards: add_loss_layer = int 1, loss details,
//              subnet; add_tag_layer and add_skip_layer = int 1, subnet; add_layer = int 2,
//              subnet, layer details, three bools, x_grad, cached_output, params_grad; the
//              add_layer directly on the input = int 3, input details, layer details, three
//              bools, x_grad, cached_output, grad_final, unsigned int sample expansion factor.
//   layer details  dlib/dnn/layers.h, loss.h, input.h (con_5, affine_2, relu_, max_pool_2,
//              avg_pool_2, add_prev_, fc_3, loss_metric_2, input_rgb_image_sized).
#include "core/engine/weights_prewalk.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/engine/embedding.h"

namespace fedface {
namespace {

enum class Kind {
  kInput,
  kCon,
  kAffine,
  kRelu,
  kMaxPool,
  kAvgPool,
  kAddPrev,
  kTag,
  kSkip,
  kFc,
  kLoss
};

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kInput:
      return "input";
    case Kind::kCon:
      return "con";
    case Kind::kAffine:
      return "affine";
    case Kind::kRelu:
      return "relu";
    case Kind::kMaxPool:
      return "max_pool";
    case Kind::kAvgPool:
      return "avg_pool";
    case Kind::kAddPrev:
      return "add_prev";
    case Kind::kTag:
      return "tag";
    case Kind::kSkip:
      return "skip";
    case Kind::kFc:
      return "fc";
    case Kind::kLoss:
      return "loss_metric";
  }
  return "?";
}

// One layer of the architecture and what its serialization must hold.
struct Layer {
  Kind kind;
  long outputs = 0;  // con: filters; affine: channels; fc: outputs
  long inputs = 0;   // con, fc: input channels
  long size = 0;     // con, pools: square window (0 for avg_pool_everything)
  int stride = 0;    // con, pools
  int padding = 0;   // con, pools: dlib's default (size/2 at stride 1, else 0)
};

// face_resnet.cc's anet_type (dlib's dnn_face_recognition_ex), built the way its aliases nest,
// tracking channel counts; layers input first.
class ArchitectureBuilder {
 public:
  std::vector<Layer> Build() {
    Add({Kind::kInput});
    Con(32, 7, 2);
    Affine();
    Add({Kind::kRelu});
    Pool(Kind::kMaxPool, 3, 2);
    for (int i = 0; i < 3; ++i) Residual(32);
    ResidualDown(64);
    for (int i = 0; i < 3; ++i) Residual(64);
    ResidualDown(128);
    for (int i = 0; i < 2; ++i) Residual(128);
    ResidualDown(256);
    for (int i = 0; i < 2; ++i) Residual(256);
    ResidualDown(256);
    Pool(Kind::kAvgPool, 0, 1);  // avg_pool_everything
    Add({Kind::kFc, 128, channels_});
    Add({Kind::kLoss});
    return std::move(layers_);
  }

 private:
  void Add(Layer layer) { layers_.push_back(layer); }
  void Con(long filters, long size, int stride) {
    Add({Kind::kCon, filters, channels_, size, stride, stride != 1 ? 0 : int(size / 2)});
    channels_ = filters;
  }
  void Pool(Kind kind, long size, int stride) {
    Add({kind, 0, 0, size, stride, stride != 1 ? 0 : int(size / 2)});
  }
  void Affine() { Add({Kind::kAffine, channels_}); }
  void Tag(int id) {
    tagged_[id] = channels_;
    Add({Kind::kTag});
  }
  // block<N, affine, stride>
  void Block(long filters, int stride) {
    Con(filters, 3, stride);
    Affine();
    Add({Kind::kRelu});
    Con(filters, 3, 1);
    Affine();
  }
  void AddPrev(int id) {
    channels_ = std::max(channels_, tagged_[id]);  // dlib's add_prev keeps the larger k
    Add({Kind::kAddPrev});
  }
  // ares<N>: relu<add_prev1<block<N, affine, 1, tag1<...>>>>
  void Residual(long filters) {
    Tag(1);
    Block(filters, 1);
    AddPrev(1);
    Add({Kind::kRelu});
  }
  // ares_down<N>: relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N, affine, 2, tag1<...>>>>>>>
  void ResidualDown(long filters) {
    Tag(1);
    Block(filters, 2);
    Tag(2);
    Add({Kind::kSkip});
    channels_ = tagged_[1];
    Pool(Kind::kAvgPool, 2, 2);
    AddPrev(2);
    Add({Kind::kRelu});
  }

  std::vector<Layer> layers_;
  long channels_ = 3;
  std::array<long, 3> tagged_{};
};

// The architecture in dlib's order: index 0 is the loss layer, the last one the input.
const std::vector<Layer>& Architecture() {
  static const std::vector<Layer>* const layers = [] {
    auto* out = new std::vector<Layer>(ArchitectureBuilder().Build());
    std::reverse(out->begin(), out->end());
    return out;
  }();
  return *layers;
}

using Shape = std::array<long long, 4>;

std::string ShapeText(const Shape& s) { return absl::StrJoin(s, "x"); }

// Reads the stream front to back. The first problem is kept and every later read is a no-op, so
// the walk's code reads as the format does.
class Walker {
 public:
  explicit Walker(std::string_view bytes) : bytes_(bytes) {}

  absl::Status Run() {
    const std::vector<Layer>& net = Architecture();
    Walk(net, 0);
    if (error_.empty() && pos_ != bytes_.size()) {
      error_ = absl::StrCat("weights: ", bytes_.size() - pos_,
                            " trailing bytes after the network (which ends at byte ", pos_, ")");
    }
    return error_.empty() ? absl::OkStatus() : absl::InvalidArgumentError(error_);
  }

 private:
  bool ok() const { return error_.empty(); }
  size_t left() const { return bytes_.size() - pos_; }

  std::string Where(size_t at) const {
    return absl::StrCat("layer ", index_, " (", KindName(kind_), ") at byte ", at, ": ");
  }
  void Fail(size_t at, const std::string& what) {
    if (ok()) error_ = absl::StrCat("weights: ", Where(at), what);
  }
  void FailShort(size_t at, const std::string& what) {
    if (ok()) {
      error_ = absl::StrCat("weights: the network ends early (", bytes_.size(),
                            " bytes, truncated?): ", Where(at), what);
    }
  }
  bool Need(size_t at, size_t n, const std::string& field) {
    if (!ok()) return false;
    if (n <= left()) return true;
    FailShort(at, absl::StrCat(field, " needs ", n, " bytes, ", left(), " remain"));
    return false;
  }

  // An integer of at most `max_bytes` magnitude bytes, in [lo, hi].
  long long Int(const std::string& field, int max_bytes, bool is_signed, long long lo,
                long long hi) {
    const size_t at = pos_;
    if (!Need(at, 1, field)) return 0;
    const uint8_t control = static_cast<uint8_t>(bytes_[pos_]);
    const int n = control & 0x0F;
    const bool negative = (control & 0x80) != 0;
    if ((control & 0x70) != 0 || n == 0 || n > max_bytes || (negative && !is_signed)) {
      Fail(at,
           absl::StrCat(field, ": not a ", max_bytes, "-byte ", is_signed ? "signed" : "unsigned",
                        " integer (control byte 0x", absl::Hex(control), ")"));
      return 0;
    }
    if (!Need(at, 1 + n, field)) return 0;
    uint64_t magnitude = 0;
    for (int i = n; i >= 1; --i) magnitude = (magnitude << 8) | uint8_t(bytes_[pos_ + i]);
    pos_ += 1 + n;
    // Both bounds fit in a long long; compare magnitudes so that nothing overflows.
    const uint64_t limit = negative ? (lo < 0 ? uint64_t(-(lo + 1)) + 1 : 0) : uint64_t(hi);
    if (magnitude > limit) {
      Fail(at, absl::StrCat(field, " is ", negative ? "-" : "", magnitude, ", must be in [", lo,
                            ", ", hi, "]"));
      return 0;
    }
    return negative ? (magnitude == 0 ? 0 : -static_cast<long long>(magnitude - 1) - 1)
                    : static_cast<long long>(magnitude);
  }
  long long Signed(const std::string& field, int bytes) {
    const long long hi =
        bytes >= 8 ? std::numeric_limits<long long>::max() : (1LL << (8 * bytes - 1)) - 1;
    return Int(field, bytes, true, -hi - 1, hi);
  }
  void ExpectInt(const std::string& field, int bytes, bool is_signed, long long want) {
    const size_t at = pos_;
    const long long hi = bytes >= 8 ? std::numeric_limits<long long>::max()
                                    : (1LL << (8 * bytes - (is_signed ? 1 : 0))) - 1;
    const long long got = Int(field, bytes, is_signed, is_signed ? -hi - 1 : 0, hi);
    if (ok() && got != want) {
      Fail(at, absl::StrCat(field, " is ", got, ", the architecture needs ", want));
    }
  }
  void ExpectString(const std::string& field, const std::string& want) {
    const size_t at = pos_;
    const long long length = Int(field, 8, false, 0, std::numeric_limits<long long>::max());
    if (!ok()) return;
    if (static_cast<unsigned long long>(length) != want.size()) {
      Fail(at, absl::StrCat(field, " is a string of ", length, " bytes, expected \"", want, "\""));
      return;
    }
    if (!Need(at, want.size(), field)) return;
    const std::string_view got = bytes_.substr(pos_, want.size());
    pos_ += want.size();
    if (got != want) {
      Fail(at, absl::StrCat(field, " is \"", absl::CHexEscape(std::string(got)), "\", expected \"",
                            want, "\""));
    }
  }
  bool Bool(const std::string& field) {
    const size_t at = pos_;
    if (!Need(at, 1, field)) return false;
    const char c = bytes_[pos_++];
    if (c != '0' && c != '1') {
      Fail(at, absl::StrCat(field, ": not a bool (byte 0x", absl::Hex(uint8_t(c)), ")"));
    }
    return c == '1';
  }
  void ExpectBool(const std::string& field, bool want) {
    const size_t at = pos_;
    if (Bool(field) != want && ok()) {
      Fail(at, absl::StrCat(field, " is ", !want, ", the architecture needs ", want));
    }
  }
  // float_details; the value is not checked here.
  void Float(const std::string& field) {
    const size_t at = pos_;
    if (!Need(at, 1, field)) return;
    if ((uint8_t(bytes_[pos_]) & 0x70) != 0) {
      Fail(at, absl::StrCat(field, ": a float in dlib's old text form"));
      return;
    }
    Signed(field, 8);
    Signed(field, 2);
  }
  // The header of a tensor: a version and four dimensions, checked against `want` before
  // anything is sized by them. Returns the element count (0 after a failure).
  long long TensorHeader(const std::string& field, int version, const Shape& want) {
    const size_t at = pos_;
    ExpectInt(absl::StrCat(field, " version"), 4, true, version);
    Shape got{};
    for (long long& d : got) d = Signed(field, 8);
    if (!ok()) return 0;
    if (std::any_of(got.begin(), got.end(), [](long long d) { return d < 0; })) {
      Fail(at, absl::StrCat(field, " has a negative dimension (", ShapeText(got), ")"));
      return 0;
    }
    long long count = 1;
    for (long long d : got) {
      if (__builtin_mul_overflow(count, d, &count)) {
        Fail(at, absl::StrCat(field, " is ", ShapeText(got), ": more than 2^63 values"));
        return 0;
      }
    }
    const long long want_count = want[0] * want[1] * want[2] * want[3];
    if (count != want_count) {
      Fail(at, absl::StrCat(field, " has ", count, " values, the architecture needs ", want_count,
                            " (", ShapeText(want), ")"));
      return 0;
    }
    if (got != want) {
      Fail(at, absl::StrCat(field, " is ", ShapeText(got), ", the architecture needs ",
                            ShapeText(want)));
      return 0;
    }
    return count;
  }
  // resizable_tensor: header, then the float32 values (skipped, never copied).
  void Tensor(const std::string& field, const Shape& want) {
    const size_t at = pos_;
    const long long count = TensorHeader(field, 2, want);
    // count <= 2^63 / 4 because `want` is a real network's shape.
    if (Need(at, static_cast<size_t>(count) * 4, absl::StrCat(field, " (", count, " floats)"))) {
      pos_ += static_cast<size_t>(count) * 4;
    }
  }
  void View(const std::string& field, const Shape& want) { TensorHeader(field, 1, want); }

  // The window of con_, max_pool_ and avg_pool_ (the same fields, in the same order).
  void Window(const Layer& l) {
    ExpectInt("nr", 8, true, l.size);
    ExpectInt("nc", 8, true, l.size);
    ExpectInt("stride_y", 4, true, l.stride);
    ExpectInt("stride_x", 4, true, l.stride);
    ExpectInt("padding_y", 4, true, l.padding);
    ExpectInt("padding_x", 4, true, l.padding);
  }

  void Details(const Layer& l) {
    switch (l.kind) {
      case Kind::kCon:
        ExpectString("version", "con_5");
        Tensor("parameter tensor", {l.outputs * l.inputs * l.size * l.size + l.outputs, 1, 1, 1});
        ExpectInt("num_filters", 8, true, l.outputs);
        Window(l);
        View("filters", {l.outputs, l.inputs, l.size, l.size});
        View("biases", {1, l.outputs, 1, 1});
        for (int i = 0; i < 4; ++i) Float("multiplier");
        ExpectBool("use_bias", true);
        return;
      case Kind::kAffine:
        ExpectString("version", "affine_2");
        Tensor("parameter tensor", {2 * l.outputs, 1, 1, 1});
        View("gamma", {1, l.outputs, 1, 1});
        View("beta", {1, l.outputs, 1, 1});
        ExpectInt("mode", 4, true, 0);  // CONV_MODE
        ExpectBool("disabled", false);
        return;
      case Kind::kMaxPool:
      case Kind::kAvgPool:
        ExpectString("version", l.kind == Kind::kMaxPool ? "max_pool_2" : "avg_pool_2");
        Window(l);
        return;
      case Kind::kRelu:
        ExpectString("version", "relu_");
        return;
      case Kind::kAddPrev:
        ExpectString("version", "add_prev_");
        return;
      case Kind::kFc:
        ExpectString("version", "fc_3");
        ExpectInt("num_outputs", 8, false, l.outputs);
        ExpectInt("num_inputs", 8, false, l.inputs);
        Tensor("parameter tensor", {l.inputs, l.outputs, 1, 1});  // FC_NO_BIAS
        View("weights", {l.inputs, l.outputs, 1, 1});
        View("biases", {0, 0, 0, 0});
        ExpectInt("bias_mode", 4, true, 1);  // FC_NO_BIAS
        for (int i = 0; i < 4; ++i) Float("multiplier");
        ExpectBool("use_bias", true);
        return;
      case Kind::kLoss:
        ExpectString("version", "loss_metric_2");
        Float("margin");
        Float("distance threshold");
        return;
      case Kind::kInput:
        ExpectString("version", "input_rgb_image_sized");
        for (const char* mean : {"mean red", "mean green", "mean blue"}) Float(mean);
        ExpectInt("nr", 8, false, kChipSize);
        ExpectInt("nc", 8, false, kChipSize);
        return;
      case Kind::kTag:
      case Kind::kSkip:
        return;
    }
  }

  void Enter(const std::vector<Layer>& net, size_t i) {
    index_ = i;
    kind_ = net[i].kind;
  }

  // The layer at `i` and everything nearer the input.
  void Walk(const std::vector<Layer>& net, size_t i) {
    if (!ok()) return;
    Enter(net, i);
    const Layer& l = net[i];
    switch (l.kind) {
      case Kind::kLoss:
        ExpectInt("add_loss_layer version", 4, true, 1);
        Details(l);
        Walk(net, i + 1);
        return;
      case Kind::kTag:
      case Kind::kSkip:
        ExpectInt(l.kind == Kind::kTag ? "add_tag_layer version" : "add_skip_layer version", 4,
                  true, 1);
        Walk(net, i + 1);
        return;
      case Kind::kInput:
        Details(l);
        return;
      default:
        break;
    }
    // add_layer; dlib specializes the one whose subnet is the input layer.
    const bool on_input = net[i + 1].kind == Kind::kInput;
    ExpectInt("add_layer version", 4, true, on_input ? 3 : 2);
    Walk(net, i + 1);
    if (!ok()) return;
    Enter(net, i);
    Details(l);
    // Training state: the three flags are dropped when the network is rebuilt from its
    // parameters; the tensors must be empty (dlib's clean(), which the vendor's conversion runs).
    for (const char* flag : {"this_layer_setup_called", "gradient_input_is_stale",
                             "get_output_and_gradient_input_disabled"}) {
      Bool(flag);
    }
    Tensor("x_grad", {0, 0, 0, 0});
    Tensor("cached_output", {0, 0, 0, 0});
    Tensor(on_input ? "grad_final" : "params_grad", {0, 0, 0, 0});
    if (on_input) ExpectInt("sample_expansion_factor", 4, false, 1);
  }

  std::string_view bytes_;
  size_t pos_ = 0;
  size_t index_ = 0;
  Kind kind_ = Kind::kLoss;
  std::string error_;
};

}  // namespace

absl::Status PrewalkFaceResNetWeights(std::string_view bytes) { return Walker(bytes).Run(); }

}  // namespace fedface
