// The dlib face ResNet (the `anet_type` of dlib's dnn_face_recognition_ex): 150x150 RGB chip in,
// 128-d embedding out. face_resnet.cc is the only translation unit that includes dlib/dnn.h.
#pragma once

#include <memory>
#include <opencv2/core/mat.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/embedding.h"

namespace fedface {

// One float tensor of the tfjs model, already dequantized, in the manifest's order and layout
// (conv filters HWIO, fc [256,128]).
struct NamedTensor {
  std::string name;
  std::vector<int> shape;
  std::vector<float> values;
};

// The parameters of a network FaceResNet::FromSerialized accepted, copied out of dlib for other
// backends (face_resnet_onednn.h). Input-to-output order; the shapes are the architecture's, and a
// consumer still checks every size before using it.
struct FaceResNetParameters {
  struct ConvUnit {
    std::vector<float> filters;      // OIHW
    std::vector<float> bias;         // per output channel
    std::vector<float> gamma, beta;  // the following affine (scale) layer, per output channel
  };
  std::vector<ConvUnit> convs;    // the 29 conv+scale units
  std::vector<float> fc;          // 256 inputs x 128 outputs, row-major
  float mean_rgb[3] = {0, 0, 0};  // the input layer subtracts these, then divides by 256
};

// A loaded network. Not thread-safe: give each worker its own (Clone()).
class FaceResNet {
 public:
  // Deserializes dlib-serialized weights and checks them against the architecture before any
  // forward pass. dlib reads the bytes only after PrewalkFaceResNetWeights (weights_prewalk.h)
  // has accepted them, so no header can crash dlib or size an allocation. Fails (InvalidArgument,
  // one line starting "weights") on a stream that is truncated, has trailing bytes or is not this
  // network; on a layer whose parameter tensor has another count or shape, whose
  // filter/weight/scale views or flags differ from the architecture's (the line names the layer's
  // dlib index and kind and the expected vs found shape); on a non-finite parameter; on input
  // channel means outside [0, 255]. ENSURES: the returned net is the architecture's own set-up
  // network holding the stream's parameter values (no other state from the stream is kept, so none
  // re-initializes itself).
  static absl::StatusOr<std::unique_ptr<FaceResNet>> FromSerialized(std::string_view bytes);

  // The same load and checks as FromSerialized, answering the checked parameters instead of a
  // dlib network.
  static absl::StatusOr<FaceResNetParameters> CheckedParameters(std::string_view bytes);

  // Builds the network from the tfjs tensors (face-api's face_recognition_model) and returns its
  // dlib serialization. REQUIRES: the 117 tensors of face-api's manifest, by name.
  static absl::StatusOr<std::string> SerializeFromTfjs(const std::vector<NamedTensor>& tensors);

  virtual ~FaceResNet() = default;

  // A deep copy that can run on another thread.
  virtual std::unique_ptr<FaceResNet> Clone() const = 0;

  // REQUIRES: every chip is kChipSize x kChipSize CV_8UC3 in RGB order.
  // ENSURES: one embedding per chip, in order.
  virtual std::vector<Embedding> Embed(const std::vector<cv::Mat>& chips) = 0;
};

}  // namespace fedface
