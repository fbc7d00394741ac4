// TEST-ONLY: damaged but well-formed serializations of the face ResNet, for the tests of
// FaceResNet::FromSerialized's shape checks. The vendor's conversion (SerializeFromTfjs) refuses
// mis-shaped tensors, so a mis-shaped network can only be made by editing a deserialized dlib
// network, which needs dlib/dnn.h; this keeps that inside face_resnet.cc. No production code
// calls these functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fedface::testing_only {

enum class Misshape {
  kConvMissingValues,    // the first 3x3 con layer (32 filters of 32x3x3 + 32 biases = 9248
                         // values) keeps only its first 9216 values
  kAffineNeverSetUp,     // the first affine layer replaced by one that was never set up (no
                         // parameters)
  kFcMissingOutput,      // the final fc layer keeps 256 x 127 of its 256 x 128 weights
  kConvFiltersReshaped,  // the first 3x3 con layer's values intact, but its filters view
                         // (32x32x3x3) serialized as 32x31x3x3
};

// REQUIRES: `serialized` is a network FaceResNet::FromSerialized accepts.
// ENSURES: the dlib serialization of the same network with the damage `which` names; dlib's
// own deserialize() accepts it.
absl::StatusOr<std::string> MisshapedSerialization(std::string_view serialized, Misshape which);

}  // namespace fedface::testing_only
