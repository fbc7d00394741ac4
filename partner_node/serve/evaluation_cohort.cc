#include "partner_node/serve/evaluation_cohort.h"

#include <algorithm>
#include <set>

#include "core/common/status_macros.h"

namespace fedface::partner {

int64_t EvaluationCohort::enrolled_images() const {
  int64_t n = 0;
  for (const CohortSubject& s : subjects) n += static_cast<int64_t>(s.images.size());
  return n;
}

absl::StatusOr<EvaluationCohort> LoadCohort(const GalleryStore& store,
                                            const std::string& model_version) {
  EvaluationCohort cohort;
  cohort.model_version = model_version;
  std::set<int64_t> attempted;
  RETURN_IF_ERROR(
      store.ForEachEmbedding(model_version, [&](const StoredEmbedding& e) -> absl::Status {
        if (e.face_index != 0) return absl::OkStatus();
        if (cohort.subjects.empty() || cohort.subjects.back().key != e.subject_id) {
          cohort.subjects.push_back(CohortSubject{e.subject_id, {}});
        }
        cohort.subjects.back().images.push_back(e.embedding);
        attempted.insert(e.subject_id);
        return absl::OkStatus();
      }));
  ASSIGN_OR_RETURN(std::vector<ImageRecord> failures, store.Failures(model_version));
  for (const ImageRecord& f : failures) attempted.insert(f.subject_id);
  // Subjects whose every image failed keep a place (with no images): the DP planners give each
  // subject its slot by key, so that other subjects' comparisons do not depend on its data.
  std::set<int64_t> present;
  for (const CohortSubject& s : cohort.subjects) present.insert(s.key);
  for (int64_t key : attempted) {
    if (!present.count(key)) cohort.subjects.push_back(CohortSubject{key, {}});
  }
  std::sort(cohort.subjects.begin(), cohort.subjects.end(),
            [](const CohortSubject& a, const CohortSubject& b) { return a.key < b.key; });
  for (const ImageRecord& f : failures) {
    auto it = std::lower_bound(cohort.subjects.begin(), cohort.subjects.end(), f.subject_id,
                               [](const CohortSubject& s, int64_t key) { return s.key < key; });
    if (it != cohort.subjects.end() && it->key == f.subject_id) ++it->failures_to_enrol;
  }
  cohort.subjects_attempted = static_cast<int64_t>(attempted.size());
  cohort.failures_to_enrol = static_cast<int64_t>(failures.size());
  cohort.images_attempted = cohort.enrolled_images() + cohort.failures_to_enrol;
  return cohort;
}

}  // namespace fedface::partner
