#include "partner_node/serve/evaluation_job.h"

#include <memory>
#include <mutex>
#include <shared_mutex>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
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

// The allowance's gate for one round's re-embedding. A refusal is logged with its counts and
// remembered in *refused, so the caller tells the vendor only kReembeddingRefused.
ReembeddingAdmission Admission(const EvaluationJobContext& c, const std::string& round,
                               const std::string& version, bool* refused) {
  return [&c, round, version, refused](int64_t images) -> absl::Status {
    absl::Status s = c.reembedding != nullptr
                         ? c.reembedding->Admit(images)
                         : absl::ResourceExhaustedError("no re-embedding is admitted here");
    if (s.ok()) {
      Log(c, absl::StrCat("round ", round, ": re-embedding ", images,
                          " gallery image(s) with model ", version, " (admitted)"));
      return s;
    }
    Log(c, absl::StrCat("round ", round, ": re-embedding ", images, " gallery image(s) with model ",
                        version, " refused: ", s.message()));
    if (absl::IsResourceExhausted(s)) *refused = true;
    return s;
  };
}

absl::StatusOr<EvaluationAggregate> RunProtocol(const EvaluationJobContext& context,
                                                const EvaluationCohort& cohort,
                                                const LoadedServingModel& model,
                                                const fedface::v1::RunEvaluationRequest& request,
                                                const std::function<absl::Status()>& interrupted) {
  ProtocolOptions options;
  options.seed = request.seed();
  options.non_mated_sample_size = request.non_mated_sample_size();
  options.contribution_bound = context.contribution_bound;
  options.verification_bounds = context.verification_bounds;
  options.identification_holdout_percent = context.evaluation.identification_holdout_percent;
  options.max_comparisons = context.evaluation.max_comparisons;
  options.interrupted = interrupted;
  absl::StatusOr<EvaluationAggregate> aggregate =
      RunEvaluationProtocol(cohort, request.protocol(), options);
  if (!aggregate.ok()) {
    if (aggregate.status().code() == absl::StatusCode::kInternal) {
      return LocalFailure(context, "running the protocol", aggregate.status());
    }
    return aggregate.status();
  }
  aggregate->embeddings_per_second = model.embeddings_per_second;
  return aggregate;
}

// The active version: the production gallery, re-embedded first when it holds stale images.
absl::StatusOr<EvaluationCohort> ActiveCohort(const EvaluationJobContext& context,
                                              const fedface::v1::RunEvaluationRequest& request,
                                              const std::function<absl::Status()>& interrupted) {
  const std::string& version = request.model_version();
  std::shared_lock<std::shared_mutex> reading(*context.model_lock);
  absl::StatusOr<GalleryCounts> counts = context.gallery->Counts(version);
  if (!counts.ok()) return LocalFailure(context, "reading the gallery store", counts.status());
  if (counts->stale_images > 0) {
    if (!(context.refresh_stale && context.can_reembed)) {
      Log(context, absl::StrCat("gallery: ", counts->stale_images,
                                " image(s) recorded under another model than ", version,
                                " and no gallery.dir to re-embed from; run `partner_node enroll`"));
      return NotEmbedded(version);
    }
    reading.unlock();
    {
      std::unique_lock<std::shared_mutex> reembedding(*context.model_lock);
      bool refused = false;
      absl::Status s =
          context.refresh_stale(Admission(context, request.round_id(), version, &refused));
      if (refused) return absl::ResourceExhaustedError(kReembeddingRefused);
      if (!s.ok()) {
        Log(context,
            absl::StrCat("re-embedding the gallery with model ", version, ": ", s.ToString()));
        return absl::FailedPreconditionError(absl::StrCat(
            "the partner's gallery could not be re-embedded with model version ", version));
      }
    }
    reading.lock();
    if (interrupted) {
      RETURN_IF_ERROR(interrupted());
    }
  }
  absl::StatusOr<EvaluationCohort> cohort = LoadCohort(*context.gallery, version);
  if (!cohort.ok()) return LocalFailure(context, "reading the gallery store", cohort.status());
  return cohort;
}

// Another version: an evaluation-only engine and the version's own evaluation store.
absl::StatusOr<EvaluationCohort> OtherVersionCohort(
    const EvaluationJobContext& context, const fedface::v1::RunEvaluationRequest& request,
    std::shared_ptr<const LoadedServingModel>* model) {
  const std::string& version = request.model_version();
  if (!context.evaluation.evaluate_other_versions || context.other_models == nullptr ||
      context.other_galleries == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("model version ", version,
                     " is not the partner's active model and this partner does not evaluate "
                     "other model versions"));
  }
  if (!context.can_reembed) {
    Log(context, absl::StrCat("round ", request.round_id(), ": model ", version,
                              " is not active and there is no gallery.dir to embed from"));
    return NotEmbedded(version);
  }
  absl::StatusOr<std::shared_ptr<const LoadedServingModel>> loaded =
      context.other_models->Get(version);
  if (!loaded.ok()) {
    Log(context, absl::StrCat("round ", request.round_id(), ": cannot load model ", version,
                              " for evaluation: ", loaded.status().message()));
    return absl::FailedPreconditionError(absl::StrCat(
        "model version ", version,
        " could not be pulled and verified on this partner (the partner's log says why)"));
  }
  *model = *std::move(loaded);
  bool refused = false;
  absl::StatusOr<EvaluationCohort> cohort = context.other_galleries->Cohort(
      **model, Admission(context, request.round_id(), version, &refused));
  if (refused) return absl::ResourceExhaustedError(kReembeddingRefused);
  if (!cohort.ok()) {
    return LocalFailure(context, absl::StrCat("embedding the gallery with model ", version),
                        cohort.status());
  }
  return cohort;
}

}  // namespace

absl::StatusOr<EvaluationAggregate> EvaluateOnPartner(
    const EvaluationJobContext& context, const fedface::v1::RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted) {
  std::shared_ptr<const LoadedServingModel> model = context.model->current();
  ASSIGN_OR_RETURN(EvaluationCohort cohort, request.model_version() == model->version
                                                ? ActiveCohort(context, request, interrupted)
                                                : OtherVersionCohort(context, request, &model));
  if (interrupted) {
    RETURN_IF_ERROR(interrupted());
  }
  return RunProtocol(context, cohort, *model, request, interrupted);
}

}  // namespace fedface::partner
