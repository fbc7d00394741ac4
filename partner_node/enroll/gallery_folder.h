// The gallery folder a partner enrols from: ROOT/<subject>/<image files>. One level of subject
// folders; each folder name is the subject (ValidateSubjectName), each image file in it one
// enrolment image. Anything else is skipped and reported, never guessed at.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::partner {

struct GalleryFile {
  std::string subject;
  std::string relative_path;  // "subject/file.jpg": the store's key for this file
  std::string path;           // ROOT/subject/file.jpg, to read it
};

struct GalleryFolder {
  std::string root;                // absolute, normalised
  std::vector<GalleryFile> files;  // sorted by relative_path
  // Entries that are not enrolment images, as "relative/path: reason" (e.g. a file directly in
  // ROOT, a nested folder, a folder whose name is not a valid subject, a file that is not an
  // image by its extension). Hidden entries (".name") are ignored silently.
  std::vector<std::string> skipped;
  // Subject folders that could not be listed: their files are unknown, not gone.
  std::vector<std::string> unlisted_subjects;
};

// Image files by extension, case-insensitive: .jpg .jpeg .png .webp .bmp .tif .tiff.
bool HasImageExtension(const std::string& file_name);

// Lists the folder tree. Fails (naming the folder) when `root` is not a readable directory; an
// unreadable subject folder is reported in `skipped`. Reads names only, never file contents.
// Thread-safe.
absl::StatusOr<GalleryFolder> ListGalleryFolder(const std::string& root);

}  // namespace fedface::partner
