#include "partner_node/enroll/gallery_folder.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "partner_node/enroll/subject_name.h"

namespace fedface::partner {
namespace fs = std::filesystem;

bool HasImageExtension(const std::string& file_name) {
  const std::string ext = absl::AsciiStrToLower(fs::path(file_name).extension().string());
  for (const char* known : {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}) {
    if (ext == known) return true;
  }
  return false;
}

absl::StatusOr<GalleryFolder> ListGalleryFolder(const std::string& root) {
  std::error_code ec;
  GalleryFolder out;
  out.root = fs::absolute(root, ec).lexically_normal().string();
  if (out.root.size() > 1 && out.root.back() == '/') out.root.pop_back();
  if (ec || !fs::is_directory(out.root, ec)) {
    return absl::NotFoundError(absl::StrCat(out.root, ": not a directory"));
  }
  fs::directory_iterator top(out.root, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(out.root, ": cannot list: ", ec.message()));
  }
  for (fs::directory_iterator end; top != end; top.increment(ec)) {
    if (ec) break;
    const std::string subject = top->path().filename().string();
    if (subject.empty() || subject[0] == '.') continue;
    if (!top->is_directory(ec)) {
      out.skipped.push_back(absl::StrCat(subject, ": not in a subject folder"));
      continue;
    }
    if (absl::Status valid = ValidateSubjectName(subject); !valid.ok()) {
      out.skipped.push_back(absl::StrCat(subject, "/: ", valid.message()));
      continue;
    }
    std::error_code sub_ec;
    fs::directory_iterator files(top->path(), sub_ec);
    for (fs::directory_iterator end; !sub_ec && files != end; files.increment(sub_ec)) {
      const std::string name = files->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      const std::string relative = absl::StrCat(subject, "/", name);
      std::error_code type_ec;
      if (files->is_directory(type_ec)) {
        out.skipped.push_back(absl::StrCat(relative, "/: nested folder (one level of subjects)"));
      } else if (!files->is_regular_file(type_ec)) {
        out.skipped.push_back(absl::StrCat(relative, ": not a regular file"));
      } else if (!HasImageExtension(name)) {
        out.skipped.push_back(absl::StrCat(relative, ": not an image file name"));
      } else {
        out.files.push_back({subject, relative, files->path().string()});
      }
    }
    if (sub_ec) {
      out.skipped.push_back(absl::StrCat(subject, "/: cannot list: ", sub_ec.message()));
      out.unlisted_subjects.push_back(subject);
    }
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat(out.root, ": cannot list: ", ec.message()));
  }
  std::sort(out.files.begin(), out.files.end(), [](const GalleryFile& a, const GalleryFile& b) {
    return a.relative_path < b.relative_path;
  });
  std::sort(out.skipped.begin(), out.skipped.end());
  return out;
}

}  // namespace fedface::partner
