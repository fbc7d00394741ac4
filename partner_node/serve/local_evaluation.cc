#include "partner_node/serve/local_evaluation.h"

#include <chrono>
#include <iostream>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/egress/vendor_request.h"
#include "partner_node/enroll/enroll_config.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/serve/evaluation_job.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

absl::StatusOr<LocalEvaluation> EvaluateLocally(const Config& config,
                                                const EgressGuardConfig& guard,
                                                fedface::v1::RunEvaluationRequest* request) {
  ASSIGN_OR_RETURN(GalleryStoreSpec gallery_spec,
                   GalleryStoreSpecFrom(config, /*must_exist=*/true));
  absl::StatusOr<std::unique_ptr<GalleryStore>> gallery = OpenGalleryStore(gallery_spec);
  if (!gallery.ok()) {
    if (!absl::IsNotFound(gallery.status())) return gallery.status();
    return absl::FailedPreconditionError(absl::StrCat(
        gallery.status().message(), "; no gallery store: run `partner_node enroll` first"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ServingModel> model,
                   ServingModel::Open(config, EngineOptionsFromConfig(config), &std::cerr));
  LocalEvaluation out;
  out.active_version = model->current()->version;
  if (request->model_version().empty()) request->set_model_version(out.active_version);
  if (request->model_version() != out.active_version) {
    return absl::FailedPreconditionError(
        absl::StrCat("model ", request->model_version(), " is not the active model (",
                     out.active_version, "); a local evaluation uses the active model only"));
  }
  RETURN_IF_ERROR(CheckRequest(*request));

  std::shared_mutex model_lock;
  EvaluationJobContext job;
  job.model = model.get();
  job.gallery = gallery->get();
  job.evaluation = EvaluationSettingsFrom(config);
  job.contribution_bound = guard.dp.enabled ? guard.dp.contribution_bound : 0;
  job.verification_bounds = VerificationBoundsOf(guard.dp);
  // Changes nothing: the active version's stored embeddings only (no re-embedding, no other
  // version).
  job.evaluation.evaluate_other_versions = false;
  job.model_lock = &model_lock;
  job.log = &std::cerr;
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(out.aggregate, EvaluateOnPartner(job, *request, {}));
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace fedface::partner
