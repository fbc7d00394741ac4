#include "partner_node/serve/evaluation_only_models.h"

#include <chrono>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "core/package/model_manifest.h"
#include "partner_node/model_cache/model_cache.h"
#include "partner_node/model_cache/model_puller.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

absl::StatusOr<std::shared_ptr<const LoadedServingModel>> EvaluationOnlyModels::Get(
    const std::string& version) {
  if (!IsValidModelVersion(version)) {
    return absl::InvalidArgumentError(absl::StrCat("'", version, "' is not a model version"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (loaded_ && loaded_->version == version) return loaded_;
  loaded_.reset();  // one evaluation-only engine at a time

  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config_.GetPath("model_cache.dir")));
  std::string how = "installed";
  if (!cache.IsInstalled(version)) {
    std::ostringstream progress;
    PullRequest request;
    request.version = version;
    request.make_active = false;
    ASSIGN_OR_RETURN(PullResult pulled, PullModel(config_, request, &progress));
    how = pulled.downloaded ? "downloaded" : "installed";
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const LoadedServingModel> model,
                   LoadServingModel(config_, engine_options_, version, log_));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ServeLog(log_, absl::StrFormat("model %s loaded for evaluation only (%s, verified against the "
                                 "pinned key, NOT active) in %.2f s",
                                 version, how, seconds));
  loaded_ = std::move(model);
  return loaded_;
}

}  // namespace fedface::partner
