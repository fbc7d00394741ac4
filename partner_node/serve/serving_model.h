// The model a running node evaluates (and matches) with: a verified version from the model cache
// and the face engine that runs it.
//
// Ensure(V) makes V the loaded model: when V is not the one loaded it runs the model cache's
// pull (model_puller.h: fetch from the vendor registry if needed, verify signature against the
// PINNED key, sha256 and self-test, install, point `active` at it) and then loads V from the
// cache, verified again. Anything refused leaves the loaded model as it was. Versions are only
// ever switched here, one switch at a time.
//
// Throughput: when a model is loaded, the engine embeds the package's own self-test chips (not
// partner data) a few times; embeddings per second on all workers is what releases report.
//
// Thread safety: thread-safe. current() snapshots stay valid while held, also across a switch.
#pragma once

#include <memory>
#include <mutex>
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
  // when the cache has no active model. `log` (may be null) receives one line per switch.
  static absl::StatusOr<std::unique_ptr<ServingModel>> Open(const Config& config,
                                                            const EngineOptions& engine_options,
                                                            std::ostream* log);

  std::shared_ptr<const LoadedServingModel> current() const;

  // Makes `version` the loaded (and the cache's active) model; see above. Errors are for the
  // partner's log (they may name local folders).
  absl::StatusOr<std::shared_ptr<const LoadedServingModel>> Ensure(const std::string& version);

 private:
  ServingModel(Config config, EngineOptions engine_options, std::ostream* log)
      : config_(std::move(config)), engine_options_(std::move(engine_options)), log_(log) {}
  absl::StatusOr<std::shared_ptr<const LoadedServingModel>> LoadActive();

  const Config config_;
  const EngineOptions engine_options_;
  std::ostream* const log_;
  std::mutex switch_mu_;  // one switch at a time
  mutable std::mutex mu_;
  std::shared_ptr<const LoadedServingModel> current_;
};

// Embeds the package's self-test chips (repeated to at least `min_chips`) on all the engine's
// workers and returns embeddings per second. Fails when the engine has no network.
absl::StatusOr<double> MeasureEmbeddingThroughput(FaceEngine& engine,
                                                  const std::string& package_dir,
                                                  const std::string& signing_key_path,
                                                  int min_chips);

}  // namespace fedface::partner
