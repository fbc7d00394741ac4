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

// gallery.store, gallery.db, gallery.postgresql.conninfo, gallery.dir,
// gallery.commit_batch_images, gallery.exact_search_below, gallery.search_nprobe.
inline std::vector<ConfigKey> GalleryConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "gallery.store",
       .type = T::kString,
       .default_value = "sqlite",
       .doc = "Where the gallery lives: sqlite (the file gallery.db, one machine) or postgresql "
              "(gallery.postgresql.conninfo, shared by several enrolment hosts)."},
      {.path = "gallery.postgresql.conninfo",
       .type = T::kString,
       .doc = "libpq connection string of the PostgreSQL gallery (gallery.store: postgresql), "
              "e.g. 'host=/run/postgresql dbname=fedface user=fedface'. No password: it comes "
              "from a passfile (passfile=FILE, PGPASSFILE or ~/.pgpass); a string with one is "
              "refused."},
      {.path = "gallery.db",
       .type = T::kPath,
       .default_value = "gallery.db",
       .doc = "The SQLite gallery store (gallery.store: sqlite): a database (WAL) of subjects, "
              "image hashes, failures to "
              "enrol and embeddings. Created when absent. Never leaves the partner."},
      {.path = "gallery.postgresql.claim_lease_seconds",
       .type = T::kInt,
       .default_value = "300",
       .doc = "With several enrolment hosts on a PostgreSQL gallery: how long a batch of files "
              "claimed by one host stays its own; a host killed mid-batch returns its files to "
              "the pool after this long (a working host renews its claims every third of it).",
       .min = 1,
       .max = 86400},
      {.path = "gallery.postgresql.follow_interval_ms",
       .type = T::kInt,
       .default_value = "1000",
       .doc = "On a PostgreSQL gallery: how often `serve` and `local-api` read the gallery's "
              "change log and add to their search index what other hosts enrolled (or remove "
              "what they removed), without a restart.",
       .min = 10,
       .max = 600000},
      {.path = "gallery.postgresql.change_log_retention_s",
       .type = T::kInt,
       .default_value = "86400",
       .doc = "On a PostgreSQL gallery: how long a following `serve` or `local-api` may be "
              "silent (stopped, cut off) and still hold back the change-log rows it has not "
              "applied. Rows every live follower applied are pruned (by enrolment hosts after a "
              "run, and by the followers); a follower silent for longer reloads its index from "
              "the store when it returns.",
       .min = 3600,
       .max = 30 * 86400},
      {.path = "gallery.postgresql.reconnect_timeout_s",
       .type = T::kInt,
       .default_value = "300",
       .doc = "On a PostgreSQL gallery: how long an enrolment host keeps reconnecting (with "
              "backoff) to a server that went away mid-run - a restart, a failover - and then "
              "retries the batch it was committing, before the run fails. 0: fail at once.",
       .min = 0,
       .max = 86400},
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
      // 1:N search (FaceIndexOptions, partner_node/gallery/face_index.h).
      {.path = "gallery.exact_search_below",
       .type = T::kInt,
       .default_value = "16384",
       .doc = "Identify scans every embedding (exact) while the gallery holds fewer; from this "
              "many, a FAISS inverted file scans ~sqrt(n) lists' worth (recall@1 >= 0.99).",
       .min = 1,
       .max = int64_t{1} << 40},
      {.path = "gallery.search_nprobe",
       .type = T::kInt,
       .default_value = "28",
       .doc = "Inverted-file lists Identify scans (of ~sqrt(n)); more is slower and nearer exact.",
       .min = 1,
       .max = 65536},
  };
}

// engine.workers, engine.min_face_px, engine.exact_parity, engine.upsample, engine.grayscale,
// engine.max_side, engine.max_pixels, engine.backend.
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
              "and engine.max_side, and dlib's embeddings, instead of the fast default."},
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
      // The names are EmbeddingBackendNames(); tests/unit/engine/embedding_backend_test.cc checks
      // that the two agree.
      {.path = "engine.backend",
       .type = T::kString,
       .default_value = "onednn",
       .doc = "Embedding backend: onednn (the same network on oneDNN, fp32: descriptors within "
              "1e-4 of dlib's, about 2.5x less CPU per face), dlib (the reference, "
              "face_recognition's exact numbers) or onednn-int8 (int8 convolutions quantized "
              "with the package's signed int8_calibration; descriptors within a few hundredths "
              "of fp32's, about 3.5x less CPU again). engine.exact_parity always uses dlib.",
       .one_of = {"dlib", "onednn", "onednn-int8"}},
  };
}

}  // namespace fedface::partner
