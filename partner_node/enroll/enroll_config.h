// What the gallery.* and engine.* configuration keys (gallery_config_keys.h) build: the engine of
// the ACTIVE model version from the model cache. Shared by `partner_node enroll`,
// `partner_node local-api` and `partner_node serve`, so that every command reading one partner
// file embeds with the same model and detector settings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/config/config_schema.h"
#include "core/engine/face_engine.h"
#include "core/package/model_manifest.h"
#include "partner_node/enroll/gallery_config_keys.h"

namespace fedface::partner {

// EngineOptions from the engine.* keys. REQUIRES: `config` was loaded with PartnerConfigSchema.
EngineOptions EngineOptionsFromConfig(const Config& config);

// The engine running the model cache's active version.
struct ActiveModelEngine {
  std::unique_ptr<FaceEngine> engine;
  ModelManifest manifest;  // manifest.version is the model version embeddings are stored under
  float self_test_max_distance = 0;
};

// Opens model_cache.dir, loads its active version with LoadVerifiedModel against the pinned key
// vendor.signing_key (signature, weights sha256, self-test), and builds a FaceEngine from the
// engine.* keys. NotFound when no model is active ("run `partner_node models pull`"); other errors
// name the folder or file. Thread-safe.
absl::StatusOr<ActiveModelEngine> LoadActiveModelEngine(const Config& config);

// The active version's name without loading it ("" when none is active). Thread-safe.
absl::StatusOr<std::string> ActiveModelVersion(const Config& config);

}  // namespace fedface::partner
