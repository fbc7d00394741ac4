// One evaluation job on the partner's machine: make sure the requested model version is the one
// loaded (pull + verify + activate when allowed), make sure the gallery is embedded with it,
// read the cohort from the gallery store and run the protocol (evaluation_protocols.h). The
// result is an EvaluationAggregate for the egress guard, with the node's measured throughput.
//
// Errors are safe to show the vendor (they name only the vendor's own values and fixed reasons);
// the detail of local failures (paths, SQLite, counts) goes to `log`.
//
// Thread safety: EvaluateOnPartner may run on several threads at once (the model switch and the
// stores serialise themselves).
#pragma once

#include <functional>
#include <ostream>
#include <shared_mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

// Moves the node's other users of the model (the local match API) to `model` and re-embeds,
// when the node can, what the gallery holds under other versions. Idempotent. Called with the
// exclusive model lock held.
using ModelFollower = std::function<absl::Status(std::shared_ptr<const LoadedServingModel> model)>;

struct EvaluationJobContext {
  ServingModel* model = nullptr;    // required
  GalleryStore* gallery = nullptr;  // required
  EvaluationSettings evaluation;
  int contribution_bound = 0;       // c when differential privacy is on, else 0
  bool allow_model_switch = false;  // false also for previews: they change nothing
  ModelFollower follow_model;       // may be empty (previews)
  bool can_reembed = false;         // follow_model re-embeds gallery images (gallery.dir set)
  // Held shared while a job reads the model and the gallery, exclusively while a job switches
  // the model and re-embeds the gallery, so no job evaluates a gallery being re-embedded.
  std::shared_mutex* model_lock = nullptr;  // required
  std::ostream* log = nullptr;              // may be null
};

// REQUIRES: CheckRequest(request) passed. `interrupted` (may be empty) is polled during the run.
absl::StatusOr<EvaluationAggregate> EvaluateOnPartner(
    const EvaluationJobContext& context, const fedface::v1::RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted);

}  // namespace fedface::partner
