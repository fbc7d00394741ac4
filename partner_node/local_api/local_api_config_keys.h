// The local match API's own configuration keys, in a header without gRPC or engine dependencies
// so that PartnerConfigSchema() compiles without them. local_api.listen and
// local_api.max_message_bytes are declared with the serve keys (partner_node/serve/serve_config.h)
// and read by `partner_node local-api` too. What the keys mean: local_api_listener.h.
#pragma once

#include <vector>

#include "core/config/config_schema.h"

namespace fedface::partner {

// local_api.max_top_k, local_api.verify_threshold.
inline std::vector<ConfigKey> LocalApiConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "local_api.max_top_k",
       .type = T::kInt,
       .default_value = "100",
       .doc = "Largest top_k an Identify request may ask for.",
       .min = 1,
       .max = 10000},
      {.path = "local_api.verify_threshold",
       .type = T::kString,
       .doc = "Distance at or below which Verify and Identify report a match, e.g. \"0.55\". "
              "Default: the threshold the model's signed manifest declares (0.6 for dlib's "
              "model)."},
  };
}

}  // namespace fedface::partner
