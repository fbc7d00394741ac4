// A walk over the bytes of a dlib-serialized face ResNet, before dlib sees them. dlib 19.24's
// deserializer trusts the file: a tensor header with a negative dimension crashes it, and a huge
// one (or a huge string length) makes it allocate what the header says. This reads dlib's format
// for this one network (see weights_prewalk.cc for where each field comes from) and refuses any
// stream that is not it, without allocating anything sized by the stream and without dlib.
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace fedface {

// OK when `bytes` is the dlib serialization of the face ResNet (FaceResNet's architecture) with
// every tensor at the architecture's count and shape, every version string, flag and
// hyperparameter as dlib writes them for this network, the training state (gradients, cached
// outputs) empty, and no trailing byte.
// Otherwise InvalidArgument, one line starting "weights", naming dlib's layer index and kind
// (0 at the loss, as FaceResNet's other messages) and the byte offset of the offending field:
// a negative tensor dimension, a count other than the architecture's, a tensor longer than the
// bytes left ("the network ends early (N bytes, truncated?)"), an unexpected version or value,
// or trailing bytes ("N trailing bytes after the network (which ends at byte M)").
// Parameter values are not read (their finiteness is checked after dlib has loaded them).
absl::Status PrewalkFaceResNetWeights(std::string_view bytes);

}  // namespace fedface
