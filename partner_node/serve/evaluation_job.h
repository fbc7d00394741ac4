// One evaluation job on the partner's machine: find the embeddings of the requested model
// version, read the cohort and run the protocol (evaluation_protocols.h). The result is an
// EvaluationAggregate for the egress guard, with the throughput of the engine that made them.
//
// The vendor may ask to EVALUATE a version; only the partner ACTIVATES one (DESIGN.md, rule 3):
//   - the ACTIVE version (the one the local match API serves): the production gallery store's
//     embeddings, as they are. When it holds images under other versions (the partner activated
//     a new version and restarted), the gallery.dir files are re-embedded with the active engine
//     first, once (LocalApiStack::ReembedStale; the local index follows);
//   - ANOTHER version V (when evaluation.evaluate_other_versions): V is pulled and verified into
//     the model cache if needed WITHOUT becoming active, loaded on an evaluation-only engine
//     (evaluation_only_models.h), and the gallery.dir images are embedded with it into V's own
//     evaluation store (evaluation_galleries.h), re-using what earlier rounds stored. The local
//     match API's model, index, address and answers do not change.
// Every image a round makes the partner embed is first admitted by the re-embedding allowance
// (reembedding_allowance.h: per round and per day, persistent); a refusal is the fixed text
// kReembeddingRefused (RESOURCE_EXHAUSTED).
//
// Errors are safe to show the vendor (they name only the vendor's own values and fixed reasons);
// the detail of local failures (paths, SQLite, counts) goes to `log`.
//
// Thread safety: EvaluateOnPartner may run on several threads at once (the stores, the
// evaluation-only models and the allowance serialise themselves).
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <shared_mutex>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fedface/v1/evaluation.pb.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/serve/evaluation_galleries.h"
#include "partner_node/serve/evaluation_only_models.h"
#include "partner_node/serve/reembedding_allowance.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

// Re-embeds, with the active engine, what the production gallery holds under other versions
// (idempotent; see LocalApiStack::ReembedStale). Called with the exclusive model lock held.
using StaleGalleryRefresher = std::function<absl::Status(const ReembeddingAdmission& admit)>;

struct EvaluationJobContext {
  ServingModel* model = nullptr;    // required: the active model
  GalleryStore* gallery = nullptr;  // required: the production store
  EvaluationSettings evaluation;
  int contribution_bound = 0;              // c when differential privacy is on, else 0
  VerificationBounds verification_bounds;  // c_g, c_i when differential privacy is on
  StaleGalleryRefresher refresh_stale;     // may be empty (previews): stale galleries are refused
  bool can_reembed = false;                // gallery.dir is set
  // For rounds naming another version; when either is null such rounds are refused, as when
  // evaluation.evaluate_other_versions is false.
  EvaluationOnlyModels* other_models = nullptr;
  EvaluationGalleries* other_galleries = nullptr;
  // Admits re-embedding work; null: none is admitted (previews change nothing).
  ReembeddingAllowance* reembedding = nullptr;
  // Held shared while a job reads the production gallery, exclusively while a job re-embeds it,
  // so no job evaluates a gallery being re-embedded.
  std::shared_mutex* model_lock = nullptr;  // required
  std::ostream* log = nullptr;              // may be null
};

// REQUIRES: CheckRequest(request) passed. `interrupted` (may be empty) is polled during the run.
absl::StatusOr<EvaluationAggregate> EvaluateOnPartner(
    const EvaluationJobContext& context, const fedface::v1::RunEvaluationRequest& request,
    const std::function<absl::Status()>& interrupted);

}  // namespace fedface::partner
