// The model a running node matches with: the model cache's ACTIVE version, verified and loaded
// once at start-up with the face engine that runs it, for the life of the process. Nothing a
// vendor sends changes it: a round naming another version is evaluated on an evaluation-only
// engine (evaluation_only_models.h), and only the partner activates a version (`partner_node
// models activate`, then a restart of `serve`).
//
// LoadServingModel is the one way the node loads a version for use: verified again from the
// cache (signature against the PINNED key, sha256, self-test), the engine from the engine.* keys
// through the one engine factory, and its throughput: the engine embeds the package's own
// self-test chips (not partner data) a few times; embeddings per second on all workers is what
// releases report.
//
// Thread safety: thread-safe; a LoadedServingModel is immutable once loaded.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/engine/face_engine.h"
#include "core/package/model_manifest.h"

namespace fedface::partner {

struct LoadedServingModel {
  std::string version;
  ModelManifest manifest;
  std::shared_ptr<FaceEngine> engine;
  std::optional<double> embeddings_per_second;  // on the self-test chips; nullopt if unmeasured
};

class ServingModel {
 public:
  // Loads the active model of model_cache.dir, verified against vendor.signing_key. NOT_FOUND
  // when the cache has no active model. `log` (may be null) receives the throughput problems.
  static absl::StatusOr<std::unique_ptr<ServingModel>> Open(const Config& config,
                                                            const EngineOptions& engine_options,
                                                            std::ostream* log);

  // The active model this process serves (never null, never changes).
  std::shared_ptr<const LoadedServingModel> current() const { return current_; }

 private:
  explicit ServingModel(std::shared_ptr<const LoadedServingModel> current)
      : current_(std::move(current)) {}
  const std::shared_ptr<const LoadedServingModel> current_;
};

// Loads the INSTALLED `version` of model_cache.dir (the active one or any other) as described
// above, without touching the cache's `active` pointer. Errors are for the partner's log (they
// may name local folders).
absl::StatusOr<std::shared_ptr<const LoadedServingModel>> LoadServingModel(
    const Config& config, const EngineOptions& engine_options, const std::string& version,
    std::ostream* log);

// Embeds the package's self-test chips (repeated to at least `min_chips`) on all the engine's
// workers and returns embeddings per second. Fails when the engine has no network.
absl::StatusOr<double> MeasureEmbeddingThroughput(FaceEngine& engine,
                                                  const std::string& package_dir,
                                                  const std::string& signing_key_path,
                                                  int min_chips);

}  // namespace fedface::partner
