// The configuration keys of the partner's gallery (gallery.*) and face engine (engine.*), declared
// in a header without engine dependencies so that PartnerConfigSchema() (and every test of the
// schema) compiles without OpenCV, dlib or gRPC. What the keys build is in enroll_config.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config/config_schema.h"

namespace fedface::partner {

// DecodeLimits{}.max_pixels (checked by a static_assert in enroll_config.cc).
inline constexpr int64_t kDefaultMaxPixels = 40'000'000;
// kDefaultMinFacePx of the fast detector (checked by a static_assert in enroll_config.cc).
inline constexpr int64_t kDefaultEngineMinFacePx = 160;

// gallery.db, gallery.dir, gallery.commit_batch_images.
inline std::vector<ConfigKey> GalleryConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "gallery.db",
       .type = T::kPath,
       .default_value = "gallery.db",
       .doc = "The gallery store: an SQLite database (WAL) of subjects, image hashes, failures to "
              "enrol and embeddings. Created when absent. Never leaves the partner."},
      {.path = "gallery.dir",
       .type = T::kPath,
       .doc = "Folder tree DIR/<subject>/<images> that `partner_node enroll` reads when no "
              "--gallery is given."},
      {.path = "gallery.commit_batch_images",
       .type = T::kInt,
       .default_value = "32",
       .doc = "Images per store transaction during `enroll` (a kill loses at most this many "
              "images of work, never a committed one).",
       .min = 1,
       .max = 4096},
  };
}

// engine.workers, engine.min_face_px, engine.exact_parity, engine.upsample, engine.grayscale,
// engine.max_side, engine.max_pixels.
inline std::vector<ConfigKey> EngineConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "engine.workers",
       .type = T::kInt,
       .default_value = "0",
       .doc = "Face engine worker threads, each with its own detector and network. 0: one per "
              "CPU.",
       .min = 0,
       .max = 256},
      {.path = "engine.min_face_px",
       .type = T::kInt,
       .default_value = std::to_string(kDefaultEngineMinFacePx),
       .doc = "Smallest face the default (fast) detector finds, as a box side in pixels of the "
              "original photo: every face the exact detector finds at this size or larger. "
              "Photos under 0.5 MP are searched down to 80 px, photos under 0.1 MP with the "
              "exact detector. Ignored with engine.exact_parity.",
       .min = 20,
       .max = 4096},
      {.path = "engine.exact_parity",
       .type = T::kBool,
       .default_value = "false",
       .doc = "Use face_recognition's exact detector (colour HOG, upsample 1, full resolution; "
              "about 8x the CPU per 1080p photo), tuned by engine.upsample, engine.grayscale "
              "and engine.max_side, instead of the fast default."},
      {.path = "engine.upsample",
       .type = T::kInt,
       .default_value = "1",
       .doc = "With engine.exact_parity: HOG detector upsampling (face_recognition's meaning): "
              "each step finds smaller faces and costs about 4x.",
       .min = 0,
       .max = 4},
      {.path = "engine.grayscale",
       .type = T::kBool,
       .default_value = "false",
       .doc = "With engine.exact_parity: detect on a grayscale copy (faster) instead of dlib's "
              "colour gradients."},
      {.path = "engine.max_side",
       .type = T::kInt,
       .default_value = "0",
       .doc = "With engine.exact_parity: downscale images whose longer side exceeds this many "
              "pixels for detection only (boxes are mapped back). 0: off.",
       .min = 0,
       .max = 65536},
      {.path = "engine.max_pixels",
       .type = T::kInt,
       .default_value = std::to_string(kDefaultMaxPixels),
       .doc = "Images with more pixels are refused from their header, before decoding.",
       .min = 1,
       .max = int64_t{1} << 40},
  };
}

}  // namespace fedface::partner
