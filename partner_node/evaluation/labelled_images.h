// Embedding a labelled image set for local evaluation: every distinct file once, failures to
// enrol (unreadable file, no face) counted and kept with their reason, on the partner's machine.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/engine/face_engine.h"
#include "partner_node/evaluation/pair_list.h"

namespace fedface::partner {

struct LabelledImage {
  std::string path;     // relative to the image root
  std::string subject;  // "" when the subject is unknown (pair lists)
  bool enrolled = false;
  std::string failure;  // why not enrolled
  Embedding embedding{};
};

// The images of a gallery tree ROOT/<subject>/<file>, sorted by subject then file. Hidden files
// and non-regular files are skipped. Fails when ROOT is not a readable folder.
absl::StatusOr<std::vector<LabelledImage>> ScanGalleryFolder(const std::string& root);

// The distinct files a pair list names, in first-use order.
std::vector<LabelledImage> ImagesOfPairs(const std::vector<LabelledPair>& pairs);

// Embeds the largest face of every image (all engine workers busy). An image that cannot be
// decoded or has no face is marked not enrolled with the reason.
void EmbedLabelledImages(FaceEngine& engine, const std::string& root,
                         std::vector<LabelledImage>& images);

struct ComparisonSet {
  std::vector<double> mated;
  std::vector<double> non_mated;
  std::size_t skipped_pairs = 0;  // pairs with an image that failed to enrol
};

// Distances for the listed pairs. REQUIRES: images came from ImagesOfPairs(pairs), embedded.
ComparisonSet ComparePairs(const std::vector<LabelledPair>& pairs,
                           const std::vector<LabelledImage>& images);

// Distances for all pairs of enrolled gallery images (mated = same subject).
ComparisonSet CompareAllPairs(const std::vector<LabelledImage>& images);

}  // namespace fedface::partner
