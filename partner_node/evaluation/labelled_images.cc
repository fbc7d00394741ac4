#include "partner_node/evaluation/labelled_images.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"

namespace fedface::partner {
namespace fs = std::filesystem;

absl::StatusOr<std::vector<LabelledImage>> ScanGalleryFolder(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat(root, ": not a folder"));
  }
  std::vector<LabelledImage> images;
  for (const fs::directory_entry& subject : fs::directory_iterator(root, ec)) {
    const std::string name = subject.path().filename().string();
    if (!subject.is_directory() || name.empty() || name[0] == '.') continue;
    for (const fs::directory_entry& file : fs::directory_iterator(subject.path(), ec)) {
      const std::string fname = file.path().filename().string();
      if (!file.is_regular_file() || fname.empty() || fname[0] == '.') continue;
      LabelledImage image;
      image.path = (fs::path(name) / fname).string();
      image.subject = name;
      images.push_back(std::move(image));
    }
  }
  if (ec) return absl::UnavailableError(absl::StrCat(root, ": cannot list: ", ec.message()));
  std::sort(images.begin(), images.end(), [](const LabelledImage& a, const LabelledImage& b) {
    return std::tie(a.subject, a.path) < std::tie(b.subject, b.path);
  });
  return images;
}

std::vector<LabelledImage> ImagesOfPairs(const std::vector<LabelledPair>& pairs) {
  std::vector<LabelledImage> images;
  std::map<std::string, size_t> seen;
  for (const LabelledPair& p : pairs) {
    for (const std::string* f : {&p.file_x, &p.file_y}) {
      if (seen.emplace(*f, images.size()).second) {
        LabelledImage image;
        image.path = *f;
        images.push_back(std::move(image));
      }
    }
  }
  return images;
}

void EmbedLabelledImages(FaceEngine& engine, const std::string& root,
                         std::vector<LabelledImage>& images) {
  std::vector<std::string> paths;
  paths.reserve(images.size());
  for (const LabelledImage& image : images) paths.push_back((fs::path(root) / image.path).string());
  ProcessOptions options;
  options.largest_face_only = true;
  engine.ProcessFiles(paths, options, [&](size_t i, ImageAnalysis&& a) {
    LabelledImage& image = images[i];
    if (!a.status.ok()) {
      image.failure = std::string(a.status.message());
    } else if (a.faces.empty()) {
      image.failure = absl::StrCat(paths[i], ": no face found");
    } else {
      image.enrolled = true;
      image.embedding = a.embeddings[0];
    }
  });
}

ComparisonSet ComparePairs(const std::vector<LabelledPair>& pairs,
                           const std::vector<LabelledImage>& images) {
  std::map<std::string, const LabelledImage*> by_path;
  for (const LabelledImage& image : images) by_path[image.path] = &image;
  ComparisonSet out;
  for (const LabelledPair& p : pairs) {
    const LabelledImage* x = by_path.at(p.file_x);
    const LabelledImage* y = by_path.at(p.file_y);
    if (!x->enrolled || !y->enrolled) {
      ++out.skipped_pairs;
      continue;
    }
    (p.mated ? out.mated : out.non_mated).push_back(EuclideanDistance(x->embedding, y->embedding));
  }
  return out;
}

ComparisonSet CompareAllPairs(const std::vector<LabelledImage>& images) {
  ComparisonSet out;
  for (size_t i = 0; i < images.size(); ++i) {
    if (!images[i].enrolled) continue;
    for (size_t j = i + 1; j < images.size(); ++j) {
      if (!images[j].enrolled) continue;
      const double d = EuclideanDistance(images[i].embedding, images[j].embedding);
      (images[i].subject == images[j].subject ? out.mated : out.non_mated).push_back(d);
    }
  }
  return out;
}

}  // namespace fedface::partner
