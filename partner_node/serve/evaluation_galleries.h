// Evaluation embeddings: the images of gallery.dir embedded under a model version that is NOT
// the partner's active one, for vendor rounds that evaluate that version. Each version has a
// gallery store of its own (gallery_store.h, the same schema),
//
//   DIR/VERSION.db     DIR = evaluation.state_dir/galleries
//
// apart from the production gallery store (gallery.db), so that nothing the local match API
// reads (its store, its FAISS index, its answers) changes when a vendor evaluates a version.
// The stores persist: a later round for the same version, also after a restart, re-embeds only
// what changed in gallery.dir since (the Enroller's incremental run: new, changed and removed
// files), nothing when nothing changed.
//
// What it covers: the files of gallery.dir. Local-API enrolments have no file behind them, so an
// evaluation of another version does not include them (the active version's evaluation does).
//
// Thread safety: thread-safe; Cohort calls are serialised (one version's store is never
// embedded by two rounds at once, so neither does the work twice).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "partner_node/serve/evaluation_cohort.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {

// Called with the number of images a round is about to (re-)embed, before any is; non-OK
// refuses the work (see EnrollOptions::before_embedding).
using ReembeddingAdmission = std::function<absl::Status(int64_t images_to_embed)>;

class EvaluationGalleries {
 public:
  // `dir`: where the per-version stores live (created when needed). `gallery_dir`: gallery.dir.
  // `log` may be null.
  EvaluationGalleries(std::string dir, std::string gallery_dir, int commit_batch_images,
                      std::ostream* log)
      : dir_(std::move(dir)),
        gallery_dir_(std::move(gallery_dir)),
        commit_batch_images_(commit_batch_images),
        log_(log) {}

  // REQUIRES: model.version is a valid model version and not the active one; model.engine
  //           embeds.
  // ENSURES: OK -> DIR/VERSION.db holds an outcome under model.version for every readable image
  //   file of gallery.dir (embedded now or by an earlier round, never twice for the same
  //   content); returns its cohort. One log line says how many images were re-embedded for
  //   evaluation (0 when the stored embeddings were reused). A refusal by `admit` is returned as
  //   is, nothing embedded. Other errors are for the partner's log (paths, SQLite).
  absl::StatusOr<EvaluationCohort> Cohort(const LoadedServingModel& model,
                                          const ReembeddingAdmission& admit);

  // DIR/VERSION.db.
  std::string StorePath(const std::string& version) const;

 private:
  const std::string dir_;
  const std::string gallery_dir_;
  const int commit_batch_images_;
  std::ostream* const log_;
  std::mutex mu_;
};

}  // namespace fedface::partner
