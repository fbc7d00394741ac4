#include "partner_node/serve/evaluation_galleries.h"

#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/status_macros.h"
#include "partner_node/enroll/enroller.h"
#include "partner_node/enroll/gallery_writer.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

std::string EvaluationGalleries::StorePath(const std::string& version) const {
  return (std::filesystem::path(dir_) / absl::StrCat(version, ".db")).string();
}

absl::StatusOr<EvaluationCohort> EvaluationGalleries::Cohort(const LoadedServingModel& model,
                                                             const ReembeddingAdmission& admit) {
  if (gallery_dir_.empty()) {
    return absl::FailedPreconditionError(
        "gallery.dir is not set: there are no gallery files to embed for evaluation");
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(dir_, ": cannot create: ", ec.message()));
  // Scratch embeddings of a version that is not active: always a local SQLite file on the
  // serving host, whatever gallery.store says (they are a cache, rebuilt from gallery.dir).
  ASSIGN_OR_RETURN(std::unique_ptr<GalleryStore> store,
                   OpenGalleryStore(SqliteGallerySpec(StorePath(model.version))));

  // No index: nothing searches these embeddings; the cohort is read from the store.
  GalleryWriter writer(*store, /*index=*/nullptr);
  Enroller enroller(*model.engine, writer, model.version);
  EnrollOptions options;
  options.commit_batch_images = commit_batch_images_;
  options.before_embedding = admit;
  ASSIGN_OR_RETURN(EnrollSummary summary, enroller.EnrollFolder(gallery_dir_, options));
  ServeLog(log_, absl::StrFormat("evaluation embeddings of model %s (not active): %d image(s) "
                                 "re-embedded for evaluation (%d enrolled, %d failed to enrol), %d "
                                 "reused, %d removed, %d unreadable, %.2f s (%.1f images/s)",
                                 model.version, summary.processed, summary.enrolled, summary.failed,
                                 summary.unchanged, summary.removed, summary.unreadable,
                                 summary.seconds, summary.ImagesPerSecond()));
  return LoadCohort(*store, model.version);
}

}  // namespace fedface::partner
