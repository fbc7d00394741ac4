#include "partner_node/model_cache/model_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "core/package/model_manifest.h"
#include "partner_node/model_cache/version_order.h"

namespace fedface::partner {
namespace fs = std::filesystem;
namespace {

constexpr char kPartialDir[] = ".partial";
constexpr char kStagingPrefix[] = ".staging-";
constexpr char kLockFile[] = ".lock";

absl::Status ErrnoStatus(const std::string& path, const char* what) {
  return absl::UnavailableError(absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
}

absl::Status SyncPath(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return ErrnoStatus(path.string(), "cannot open to sync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ErrnoStatus(path.string(), "fsync failed");
  return absl::OkStatus();
}

// fsyncs every file, then every folder, of a tree (children before parents).
absl::Status SyncTree(const fs::path& root) {
  std::error_code ec;
  std::vector<fs::path> dirs = {root};
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec)) {
      dirs.push_back(it->path());
    } else
      RETURN_IF_ERROR(SyncPath(it->path(), false));
  }
  if (ec) return absl::UnavailableError(absl::StrCat(root.string(), ": ", ec.message()));
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    RETURN_IF_ERROR(SyncPath(*it, true));
  }
  return absl::OkStatus();
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

}  // namespace

absl::StatusOr<ModelCacheLock> ModelCacheLock::Acquire(const std::string& cache_dir) {
  const std::string path = (fs::path(cache_dir) / kLockFile).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(path, "cannot open lock file");
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(cache_dir, ": another pull or activation is running"));
  }
  return ModelCacheLock(fd);
}

ModelCacheLock::~ModelCacheLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

absl::StatusOr<ModelCache> ModelCache::Open(const std::string& dir) {
  std::error_code ec;
  const fs::path root = fs::absolute(dir, ec).lexically_normal();
  fs::create_directories(root / kPartialDir, ec);
  if (ec || !fs::is_directory(root, ec)) {
    return absl::UnavailableError(
        absl::StrCat(root.string(), ": cannot create the model cache folder: ", ec.message()));
  }
  return ModelCache(root.string());
}

std::string ModelCache::VersionDir(const std::string& version) const {
  return (fs::path(dir_) / version).string();
}

bool ModelCache::IsInstalled(const std::string& version) const {
  std::error_code ec;
  return IsValidModelVersion(version) && version.find('/') == std::string::npos &&
         fs::is_regular_file(fs::path(VersionDir(version)) / kManifestFile, ec);
}

absl::StatusOr<std::vector<InstalledModel>> ModelCache::List() const {
  absl::StatusOr<std::string> active = ActiveVersion();
  std::vector<std::string> versions;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsInstalled(name)) versions.push_back(name);
  }
  if (ec) return absl::UnavailableError(absl::StrCat(dir_, ": cannot list: ", ec.message()));
  SortModelVersions(&versions);
  std::vector<InstalledModel> out;
  for (const std::string& version : versions) {
    InstalledModel m;
    m.version = version;
    m.active = active.ok() && *active == version;
    const std::string path = (fs::path(VersionDir(version)) / kManifestFile).string();
    absl::StatusOr<std::string> bytes = ReadFile(path, kMaxManifestBytes);
    absl::StatusOr<ModelManifest> manifest =
        bytes.ok() ? ParseManifest(*bytes, path) : absl::StatusOr<ModelManifest>(bytes.status());
    if (manifest.ok()) {
      m.model_id = manifest->model_id;
      m.weights_bytes = manifest->weights.bytes;
      m.weights_sha256 = manifest->weights.sha256;
      m.created_at = manifest->created_at;
    } else {
      m.problem = std::string(manifest.status().message());
    }
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<std::string> ModelCache::ActiveVersion() const {
  const std::string path = (fs::path(dir_) / kActiveFile).string();
  absl::StatusOr<std::string> text = ReadFile(path, 1024);
  if (absl::IsNotFound(text.status())) return std::string();
  if (!text.ok()) return text.status();
  const std::string version(absl::StripTrailingAsciiWhitespace(*text));
  if (!IsValidModelVersion(version)) {
    return absl::DataLossError(absl::StrCat(path, ": does not name a model version"));
  }
  if (!IsInstalled(version)) {
    return absl::DataLossError(
        absl::StrCat(path, ": names version ", version, ", which is not installed"));
  }
  return version;
}

absl::StatusOr<LoadedModel> ModelCache::LoadInstalled(const std::string& version,
                                                      const Ed25519PublicKey& pinned_key,
                                                      EmbeddingBackend backend) const {
  if (!IsValidModelVersion(version) || !IsInstalled(version)) {
    return absl::NotFoundError(absl::StrCat("version ", version, " is not installed in ", dir_));
  }
  ASSIGN_OR_RETURN(LoadedModel model, LoadVerifiedModel(VersionDir(version), pinned_key, backend));
  if (model.manifest.version != version) {
    return absl::DataLossError(
        absl::StrCat(VersionDir(version), ": manifest names version ", model.manifest.version));
  }
  return model;
}

absl::StatusOr<LoadedModel> ModelCache::Activate(const std::string& version,
                                                 const Ed25519PublicKey& pinned_key) const {
  ASSIGN_OR_RETURN(LoadedModel model, LoadInstalled(version, pinned_key));
  RETURN_IF_ERROR(PointActiveAt(version));
  return model;
}

absl::StatusOr<LoadedModel> ModelCache::LoadActive(const Ed25519PublicKey& pinned_key,
                                                   EmbeddingBackend backend) const {
  ASSIGN_OR_RETURN(std::string active, ActiveVersion());
  if (active.empty()) {
    return absl::NotFoundError(absl::StrCat(dir_, ": no active model; run `models pull`"));
  }
  absl::StatusOr<LoadedModel> model = LoadVerifiedModel(VersionDir(active), pinned_key, backend);
  if (model.ok() && model->manifest.version != active) {
    return absl::DataLossError(
        absl::StrCat(VersionDir(active), ": manifest names version ", model->manifest.version));
  }
  return model;
}

std::string ModelCache::PartialWeightsPath(const std::string& weights_sha256) const {
  return (fs::path(dir_) / kPartialDir / absl::StrCat(weights_sha256, ".weights")).string();
}

absl::StatusOr<std::string> ModelCache::MakeStagingDir(const std::string& version) const {
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(kStagingPrefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.substr(name.rfind('-') + 1).c_str()));
    if (!ProcessAlive(pid) || pid == ::getpid()) RemoveTreeQuietly(it->path().string());
  }
  const fs::path staging = fs::path(dir_) / absl::StrCat(kStagingPrefix, version, "-", ::getpid());
  fs::create_directories(staging / kSelfTestDir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat(staging.string(), ": cannot create: ", ec.message()));
  }
  return staging.string();
}

absl::Status ModelCache::Install(const std::string& staging_dir, const std::string& version) const {
  const std::string target = VersionDir(version);
  std::error_code ec;
  if (fs::exists(target, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(target, ": already installed"));
  }
  RETURN_IF_ERROR(SyncTree(staging_dir));
  if (::rename(staging_dir.c_str(), target.c_str()) != 0) {
    return ErrnoStatus(target, "cannot rename the staging folder into place");
  }
  return SyncDirectory(dir_);
}

absl::Status ModelCache::PointActiveAt(const std::string& version) const {
  if (!IsInstalled(version)) {
    return absl::NotFoundError(absl::StrCat("version ", version, " is not installed in ", dir_));
  }
  return WriteFileAtomically((fs::path(dir_) / kActiveFile).string(), version + "\n");
}

void RemoveTreeQuietly(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace fedface::partner
