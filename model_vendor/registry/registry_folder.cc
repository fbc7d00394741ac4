#include "model_vendor/registry/registry_folder.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface::vendor {
namespace {

absl::StatusOr<PublishedPackage> ReadPackage(const std::filesystem::path& dir) {
  const std::string manifest_path = (dir / kManifestFile).string();
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(manifest_path, kMaxManifestBytes));
  ASSIGN_OR_RETURN(ModelManifest manifest, ParseManifest(bytes, manifest_path));
  return PublishedPackage{dir.filename().string(), dir.string(), std::move(manifest)};
}

}  // namespace

absl::StatusOr<std::vector<PublishedPackage>> RegistryFolder::Scan(
    std::vector<std::string>* warnings) const {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir_, ec);
  if (ec) return absl::UnavailableError(absl::StrCat(dir_, ": cannot list: ", ec.message()));
  std::vector<PublishedPackage> out;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) || !IsValidModelVersion(name)) continue;  // temp folders etc.
    absl::StatusOr<PublishedPackage> package = ReadPackage(entry.path());
    if (!package.ok()) {
      if (warnings) warnings->push_back(absl::StrCat("skipped: ", package.status().message()));
      continue;
    }
    if (package->manifest.version != name && warnings) {
      warnings->push_back(absl::StrCat(entry.path().string(), ": manifest.json names version ",
                                       package->manifest.version, "; partners will refuse it"));
    }
    out.push_back(*std::move(package));
  }
  std::sort(out.begin(), out.end(), [](const PublishedPackage& a, const PublishedPackage& b) {
    return a.version < b.version;
  });
  return out;
}

absl::StatusOr<PublishedPackage> RegistryFolder::Find(const std::string& version) const {
  if (!IsValidModelVersion(version) || version.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", version, "' is not a model version"));
  }
  const std::filesystem::path dir = std::filesystem::path(dir_) / version;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat("version ", version, " is not in the registry"));
  }
  return ReadPackage(dir);
}

}  // namespace fedface::vendor
