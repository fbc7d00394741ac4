// One evaluation on the partner's own machine for a local command (`evaluate-release`,
// `releases show ID --local`): the active model's stored gallery embeddings, evaluated as a
// vendor round would be (evaluation_job.h) but changing nothing: no re-embedding, no other model
// version, nothing charged, held or recorded, nothing sent.
#pragma once

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/egress/release_composer.h"

namespace fedface::partner {

struct LocalEvaluation {
  EvaluationAggregate aggregate;
  std::string active_version;  // the model that evaluated it
  double seconds = 0;          // wall time of the evaluation job
};

// Opens the gallery store and the active model of `config` and runs `request` with the
// configured contribution bound (when differential privacy is on). When `request` names no
// model version, the active one is filled in. Errors name the file or the version (no gallery
// store, model not in the cache, `request` naming another version than the active one).
absl::StatusOr<LocalEvaluation> EvaluateLocally(const Config& config,
                                                const EgressGuardConfig& guard,
                                                fedface::v1::RunEvaluationRequest* request);

}  // namespace fedface::partner
