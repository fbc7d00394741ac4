// Where the photo pipeline's CPU time goes, stage by stage (issue 13 item 2): CPU ms per photo of
// one thread for reading, decoding, the detector's grayscale copy, HOG, landmarks, chips and
// embeddings per backend.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/face_resnet.h"

namespace fedface {

// CPU ms per photo (median of `repeat`) of each stage over `photos`, one thread, with the fast
// default detector and every face embedded by each of `nets` (backend name -> network).
nlohmann::json PipelineStageCpuMs(const std::vector<std::string>& photos, int repeat,
                                  const std::map<std::string, FaceResNet*>& nets);

}  // namespace fedface
