// Model versions a vendor round asks the partner to EVALUATE that are not its active model: each
// is pulled into the model cache if needed (model_puller.h with make_active = false: downloaded,
// verified against the PINNED key, installed; the cache's `active` pointer never moves), then
// loaded on an evaluation-only engine (LoadServingModel: verified again, the engine from the one
// factory, its throughput measured). Nothing the local match API uses is touched: it keeps the
// active model the process started with (serving_model.h).
//
// The most recently used version stays loaded, so consecutive rounds for one version load it
// once; asking for another version releases it (engines are large; the partner's machine is not
// a model zoo).
//
// Errors are for the partner's log (they may name local folders and the vendor's address).
//
// Thread safety: thread-safe; Get calls are serialised (one pull or load at a time). A returned
// model stays valid while the caller holds it, also after another version replaced it here.
#pragma once

#include <memory>
#include <mutex>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/engine/face_engine.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

class EvaluationOnlyModels {
 public:
  // `config` is the partner configuration (PartnerConfigSchema); `log` may be null.
  EvaluationOnlyModels(Config config, EngineOptions engine_options, std::ostream* log)
      : config_(std::move(config)), engine_options_(std::move(engine_options)), log_(log) {}

  // REQUIRES: IsValidModelVersion(version).
  // ENSURES: OK -> `version` is installed in the cache (pulled now if it was not) and loaded on
  //   an engine of its own; the cache's `active` is what it was.
  absl::StatusOr<std::shared_ptr<const LoadedServingModel>> Get(const std::string& version);

 private:
  const Config config_;
  const EngineOptions engine_options_;
  std::ostream* const log_;
  std::mutex mu_;
  std::shared_ptr<const LoadedServingModel> loaded_;  // the most recently used, or null
};

}  // namespace fedface::partner
