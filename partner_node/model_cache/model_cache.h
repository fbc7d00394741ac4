// The partner's model cache: a folder of verified model versions and a pointer to the active one.
//
//   CACHE/active                 "VERSION\n", replaced atomically (temp file, fsync, rename)
//   CACHE/VERSION/               an installed package (manifest.json, manifest.sig, weights.dat,
//                                selftest/); installed only after LoadVerifiedModel passed, by
//                                renaming a fully written and fsynced staging folder
//   CACHE/.partial/SHA.weights   a download in progress, named by the weights' sha256 from the
//                                signed manifest; survives interruption and is resumed from its
//                                size
//   CACHE/.staging-VERSION-PID/  a package being assembled; removed on failure, and at the next
//                                pull if the process died
//   CACHE/.lock                  flock()ed while a pull or an activation runs
//
// The active pointer only ever moves to a version that passed the full verification
// (signature against the pinned key, weights sha256, self-test) under the lock; anything refused
// leaves it untouched. Earlier versions are kept, so activating one is a rollback.
//
// Thread safety: a ModelCache holds only its path; the lock serialises processes and threads
// that change the folder.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/package/ed25519.h"
#include "core/package/package_verifier.h"

namespace fedface::partner {

inline constexpr char kActiveFile[] = "active";

// An exclusive lock on a cache folder; released when destroyed. Move-only.
class ModelCacheLock {
 public:
  // Fails at once (FAILED_PRECONDITION, naming the folder) when another process holds it.
  static absl::StatusOr<ModelCacheLock> Acquire(const std::string& cache_dir);
  ModelCacheLock(ModelCacheLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ModelCacheLock& operator=(ModelCacheLock&&) = delete;
  ModelCacheLock(const ModelCacheLock&) = delete;
  ~ModelCacheLock();

 private:
  explicit ModelCacheLock(int fd) : fd_(fd) {}
  int fd_;
};

struct InstalledModel {
  std::string version;
  bool active = false;
  // From manifest.json as installed (verified at install time; `activate` verifies again).
  std::string model_id;
  uint64_t weights_bytes = 0;
  std::string weights_sha256;
  std::string created_at;
  std::string problem;  // non-empty when the folder's manifest cannot be read
};

class ModelCache {
 public:
  // Creates the folder (and .partial/) when absent. Errors name the folder.
  static absl::StatusOr<ModelCache> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::string VersionDir(const std::string& version) const;
  bool IsInstalled(const std::string& version) const;

  // Installed versions, ascending by version precedence.
  absl::StatusOr<std::vector<InstalledModel>> List() const;

  // The version `active` names, or "" when there is none. Fails when the pointer is unreadable,
  // malformed, or names a version that is not installed.
  absl::StatusOr<std::string> ActiveVersion() const;

  // Verifies CACHE/VERSION in full (LoadVerifiedModel against `pinned_key`) and, only if that
  // passes, points `active` at it. REQUIRES: the caller holds the ModelCacheLock.
  absl::StatusOr<LoadedModel> Activate(const std::string& version,
                                       const Ed25519PublicKey& pinned_key) const;

  // Verifies CACHE/VERSION in full and loads it WITHOUT touching `active` (an evaluation-only
  // load). NotFound when the version is not installed. Needs no lock: installed folders are
  // never changed in place. The network is `backend`'s (engine.backend).
  absl::StatusOr<LoadedModel> LoadInstalled(
      const std::string& version, const Ed25519PublicKey& pinned_key,
      EmbeddingBackend backend = EmbeddingBackend::kDlib) const;

  // Verifies and loads the active model (for the partner service). NotFound when none is active.
  absl::StatusOr<LoadedModel> LoadActive(const Ed25519PublicKey& pinned_key,
                                         EmbeddingBackend backend = EmbeddingBackend::kDlib) const;

  // Where the weights with this sha256 are downloaded to.
  std::string PartialWeightsPath(const std::string& weights_sha256) const;

  // A fresh CACHE/.staging-VERSION-PID folder. Removes leftover staging folders of dead pulls
  // first. REQUIRES: the caller holds the ModelCacheLock.
  absl::StatusOr<std::string> MakeStagingDir(const std::string& version) const;

  // Moves a verified staging folder into place as CACHE/VERSION: fsyncs every file and folder
  // in it, renames, fsyncs the cache folder. Fails (AlreadyExists) when VERSION is installed.
  // REQUIRES: the lock, and that the staging folder passed LoadVerifiedModel.
  absl::Status Install(const std::string& staging_dir, const std::string& version) const;

  // Atomically points `active` at an installed version. REQUIRES: the lock, and that the
  // version passed LoadVerifiedModel while the lock has been held.
  absl::Status PointActiveAt(const std::string& version) const;

 private:
  explicit ModelCache(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

// Removes a folder tree, ignoring errors (used for staging folders).
void RemoveTreeQuietly(const std::string& dir);

}  // namespace fedface::partner
