// The local match API's own configuration keys, in a header without gRPC or engine dependencies
// so that PartnerConfigSchema() compiles without them. local_api.listen and
// local_api.max_message_bytes are declared with the serve keys (partner_node/serve/serve_config.h)
// and read by `partner_node local-api` too. What the keys mean: local_api_listener.h.
#pragma once

#include <vector>

#include "core/config/config_schema.h"

namespace fedface::partner {

// local_api.max_top_k, local_api.verify_threshold, local_api.max_pixels,
// local_api.max_concurrent_requests, local_api.max_queued_requests.
inline std::vector<ConfigKey> LocalApiConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "local_api.max_top_k",
       .type = T::kInt,
       .default_value = "100",
       .doc = "Largest top_k an Identify request may ask for.",
       .min = 1,
       .max = 10000},
      {.path = "local_api.max_pixels",
       .type = T::kInt,
       .default_value = "16000000",
       .doc = "Images declaring more pixels in their header are refused before decoding "
              "(RESOURCE_EXHAUSTED); bounds a request's decoded image to 3 bytes per pixel.",
       .min = 1,
       .max = 1000000000},
      {.path = "local_api.max_concurrent_requests",
       .type = T::kInt,
       .default_value = "4",
       .doc = "Requests working at once (analysing an image, reading or writing the gallery): "
              "the local API's worker threads.",
       .min = 1,
       .max = 256},
      {.path = "local_api.max_queued_requests",
       .type = T::kInt,
       .default_value = "32",
       .doc = "Requests waiting for one of those slots (one whose caller left meanwhile is "
              "answered CANCELLED, no work done); any more are refused at once with "
              "RESOURCE_EXHAUSTED.",
       .min = 0,
       .max = 1024},
      {.path = "local_api.verify_threshold",
       .type = T::kString,
       .doc = "Distance at or below which Verify and Identify report a match, e.g. \"0.55\". "
              "Default: the threshold the model's signed manifest declares (0.6 for dlib's "
              "model)."},
  };
}

}  // namespace fedface::partner
