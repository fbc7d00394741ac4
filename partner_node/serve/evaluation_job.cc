#include "partner_node/serve/evaluation_job.h"

#include <mutex>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "partner_node/serve/evaluation_cohort.h"
#include "partner_node/serve/evaluation_protocols.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {
namespace {

void Log(const EvaluationJobContext& c, const std::string& line) { ServeLog(c.log, line); }

// A local failure: the detail stays in the partner's log, the vendor gets a fixed reason.
absl::Status LocalFailure(const EvaluationJobContext& c, const std::string& step,
                          const absl::Status& detail) {
  Log(c, absl::StrCat(step, ": ", detail.ToString()));
  return absl::InternalError(absl::StrCat("evaluation failed on the partner's side while ", step));
}

absl::Status NotEmbedded(const std::string& version) {
  return absl::FailedPreconditionError(
      absl::StrCat("the partner's gallery is not embedded with model version ", version,
                   " yet; the partner must re-enrol it before this evaluation can run"));
}

// Switches to `version` (when allowed and the gallery can follow) and brings the local API and
// the gallery to it. REQUIRES the exclusive model lock.
absl::Status SwitchModel(const EvaluationJobContext& context, const std::string& version) {
  absl::StatusOr<GalleryCounts> counts = context.gallery->Counts(version);
  if (!counts.ok()) return LocalFailure(context, "reading the gallery store", counts.status());
  const bool reembed_needed = counts->stale_images > 0;
  if (reembed_needed && !(context.follow_model && context.can_reembed)) {
    Log(context, absl::StrCat("gallery: ", counts->stale_images,
                              " image(s) recorded under another model than ", version,
                              " and no gallery.dir to re-embed from; run `partner_node enroll`"));
    return NotEmbedded(version);
  }
  std::shared_ptr<const LoadedServingModel> model = context.model->current();
  if (!model || model->version != version) {
    if (!context.allow_model_switch) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model version ", version, " is not the partner's active model (",
          model ? model->version : "none", ") and this partner does not switch models on request"));
    }
    absl::StatusOr<std::shared_ptr<const LoadedServingModel>> switched =
        context.model->Ensure(version);
    if (!switched.ok()) {
      Log(context,
          absl::StrCat("cannot make model ", version, " active: ", switched.status().message()));
      return absl::FailedPreconditionError(absl::StrCat(
          "model version ", version,
          " could not be pulled, verified and activated on this partner (the partner's log says "
          "why)"));
    }
    model = *std::move(switched);
  }
  if (context.follow_model) {
    if (absl::Status s = context.follow_model(model); !s.ok()) {
      Log(context, absl::StrCat("following model ", version, ": ", s.ToString()));
      return absl::FailedPreconditionError(absl::StrCat(
          "the partner's gallery could not be re-embedded with model version ", version));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EvaluationAggregate> EvaluateOnPartner(
    const EvaluationJobContext& context, const fedface::v1::RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted) {
  const std::string& version = request.model_version();
  std::shared_lock<std::shared_mutex> reading(*context.model_lock);
  // 1. The model and the gallery: when either is not at `version`, switch under the exclusive
  // lock, then read under the shared lock again (another job may switch in between: retry).
  bool followed = false;  // this job brought the node to `version` (stale uploads may remain)
  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<const LoadedServingModel> model = context.model->current();
    absl::StatusOr<GalleryCounts> counts = context.gallery->Counts(version);
    if (!counts.ok()) return LocalFailure(context, "reading the gallery store", counts.status());
    if (model && model->version == version && (counts->stale_images == 0 || followed)) break;
    if (attempt == 3) {
      return absl::UnavailableError(
          "the partner is switching between model versions for other rounds; retry later");
    }
    reading.unlock();
    {
      std::unique_lock<std::shared_mutex> switching(*context.model_lock);
      if (absl::Status s = SwitchModel(context, version); !s.ok()) return s;
    }
    followed = true;
    reading.lock();
    if (interrupted) {
      if (absl::Status s = interrupted(); !s.ok()) return s;
    }
  }
  std::shared_ptr<const LoadedServingModel> model = context.model->current();

  // 2. The cohort and the protocol.
  absl::StatusOr<EvaluationCohort> cohort = LoadCohort(*context.gallery, version);
  if (!cohort.ok()) return LocalFailure(context, "reading the gallery store", cohort.status());
  ProtocolOptions options;
  options.seed = request.seed();
  options.non_mated_sample_size = request.non_mated_sample_size();
  options.contribution_bound = context.contribution_bound;
  options.identification_holdout_percent = context.evaluation.identification_holdout_percent;
  options.max_comparisons = context.evaluation.max_comparisons;
  options.interrupted = interrupted;
  absl::StatusOr<EvaluationAggregate> aggregate =
      RunEvaluationProtocol(*cohort, request.protocol(), options);
  if (!aggregate.ok()) {
    if (aggregate.status().code() == absl::StatusCode::kInternal) {
      return LocalFailure(context, "running the protocol", aggregate.status());
    }
    return aggregate.status();
  }
  aggregate->embeddings_per_second = model->embeddings_per_second;
  return aggregate;
}

}  // namespace fedface::partner
