// The faces one evaluation runs on: for one model version, one embedding per enrolled image of
// the gallery store (its face 0), grouped by subject, with the counts the release bands. Built
// and used on the partner's machine only; nothing here is sent anywhere (the protocols turn it
// into an EvaluationAggregate for the egress guard).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/embedding.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner {

struct CohortSubject {
  int64_t key = 0;                // the store's subject id: a local key, never released
  std::vector<Embedding> images;  // one embedding per enrolled image, store order
  int64_t failures_to_enrol = 0;  // its images without a usable face
};

struct EvaluationCohort {
  std::string model_version;
  // Every subject with an image recorded under model_version (those whose images all failed
  // to enrol have no images), ordered by key, so that a seeded protocol picks the same
  // comparisons for the same gallery.
  std::vector<CohortSubject> subjects;
  int64_t subjects_attempted = 0;  // subjects with any image recorded under model_version
  int64_t images_attempted = 0;    // enrolled + failed images under model_version
  int64_t failures_to_enrol = 0;   // failed images under model_version

  int64_t enrolled_images() const;
};

// Reads the cohort of `model_version` from the store. An image with several faces contributes
// its face 0 (the enrolment's largest face). Fails when the store cannot be read.
absl::StatusOr<EvaluationCohort> LoadCohort(const GalleryStore& store,
                                            const std::string& model_version);

}  // namespace fedface::partner
