// The vendor's registry folder: one subfolder per published version, each a package written by
// `model_vendor package`. The folder is rescanned on every request, so publishing a version is
// copying its folder in (ideally under a temporary name, then renaming it).
//
// The registry does not verify signatures: it is not a trust anchor. Partners verify everything
// against the key they pinned, so a damaged package here is refused there.
//
// Thread safety: const methods only read the file system; safe from any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/package/model_manifest.h"

namespace fedface::vendor {

struct PublishedPackage {
  std::string version;  // the subfolder's name
  std::string dir;      // absolute path of the subfolder
  ModelManifest manifest;
};

class RegistryFolder {
 public:
  explicit RegistryFolder(std::string dir) : dir_(std::move(dir)) {}

  // Every subfolder named by a valid version whose manifest.json parses, ordered by name.
  // Folders that do not qualify are skipped; they and suspicious packages (a manifest naming
  // another version than its folder, which partners will refuse) are described in *warnings,
  // one line each. Fails only when the folder itself cannot be read.
  absl::StatusOr<std::vector<PublishedPackage>> Scan(std::vector<std::string>* warnings) const;

  // The package published as `version`; NotFound when there is none.
  absl::StatusOr<PublishedPackage> Find(const std::string& version) const;

  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

}  // namespace fedface::vendor
