#include "tests/unit/enroll/partner_world.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/package/ed25519.h"
#include "core/package/model_manifest.h"
#include "core/package/package_verifier.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/model_cache/model_cache.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace fedface::testing {
namespace fs = std::filesystem;

std::string BbtGalleryDir() {
  const std::string data = DatasetsDir();
  if (data.empty()) return "";
  const std::string dir = data + "/faceapi-bbt/gallery";
  std::error_code ec;
  return fs::is_directory(dir, ec) ? dir : "";
}

const std::vector<std::string>& BbtSubjects() {
  static const std::vector<std::string> subjects = {"amy",   "bernadette", "howard",  "leonard",
                                                    "penny", "raj",        "sheldon", "stuart"};
  return subjects;
}

bool InstallTestPackage(const std::string& cache_dir, const std::string& version, bool activate,
                        std::string* error) {
  auto fail = [&](const std::string& why) {
    *error = why;
    return false;
  };
  const std::string key_path = TestVendorKey();
  absl::StatusOr<partner::ModelCache> cache = partner::ModelCache::Open(cache_dir);
  if (!cache.ok()) return fail(std::string(cache.status().message()));
  absl::StatusOr<partner::ModelCacheLock> lock = partner::ModelCacheLock::Acquire(cache->dir());
  if (!lock.ok()) return fail(std::string(lock.status().message()));
  if (!cache->IsInstalled(version)) {
    absl::StatusOr<std::string> staging = cache->MakeStagingDir(version);
    if (!staging.ok()) return fail(std::string(staging.status().message()));
    std::error_code ec;
    fs::copy(TestPackageDir(), *staging,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) return fail("copy package: " + ec.message());
    const std::string manifest_path = *staging + "/" + kManifestFile;
    absl::StatusOr<std::string> bytes = ReadFile(manifest_path);
    if (!bytes.ok()) return fail(std::string(bytes.status().message()));
    absl::StatusOr<ModelManifest> manifest = ParseManifest(*bytes, manifest_path);
    if (!manifest.ok()) return fail(std::string(manifest.status().message()));
    if (manifest->version != version) {
      // Another version of the same weights, signed by the same vendor key.
      absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::LoadPem(key_path);
      if (!key.ok()) return fail(std::string(key.status().message()));
      manifest->version = version;
      const std::string json = SerializeManifest(*manifest);
      absl::StatusOr<std::string> sig = key->Sign(json);
      if (!sig.ok()) return fail(std::string(sig.status().message()));
      if (!WriteFileAtomically(manifest_path, json).ok() ||
          !WriteFileAtomically(*staging + "/" + kSignatureFile, *sig).ok()) {
        return fail("cannot rewrite the manifest");
      }
    }
    absl::StatusOr<LoadedModel> verified = LoadVerifiedModel(*staging, key_path + ".pub");
    if (!verified.ok()) return fail(std::string(verified.status().message()));
    if (absl::Status s = cache->Install(*staging, version); !s.ok()) {
      return fail(std::string(s.message()));
    }
  }
  if (activate) {
    if (absl::Status s = cache->PointActiveAt(version); !s.ok()) {
      return fail(std::string(s.message()));
    }
  }
  return true;
}

PartnerWorld MakePartnerWorld(const std::string& prefix, const WorldOptions& options,
                              std::string* error) {
  PartnerWorld w;
  const std::string dir = MakeTempDir(prefix);
  if (dir.empty()) {
    *error = "cannot make a temporary folder";
    return w;
  }
  w.cache_dir = dir + "/models";
  w.config = dir + "/partner.yaml";
  w.gallery_db = dir + "/gallery.db";
  if (!InstallTestPackage(w.cache_dir, options.version, /*activate=*/true, error)) return w;
  // The vendor link is required configuration, but enrolment and the local API never use it.
  fs::create_directories(dir + "/pki");
  for (const char* f : {"ca.crt", "acme.crt", "acme.key"}) WriteText(dir + "/pki/" + f, "unused\n");
  WriteText(
      w.config,
      absl::StrCat("vendor:\n  address: \"127.0.0.1:1\"\n  ca_cert: pki/ca.crt\n"
                   "  client_cert: pki/acme.crt\n  client_key: pki/acme.key\n"
                   "  signing_key: ",
                   TestVendorKey(), ".pub\nmodel_cache:\n  dir: models\n",
                   "gallery:\n  db: gallery.db\n", options.gallery_yaml,
                   options.commit_batch_images > 0
                       ? absl::StrCat("  commit_batch_images: ", options.commit_batch_images, "\n")
                       : "",
                   "engine:\n  workers: 2\n", options.extra_yaml));
  w.dir = dir;
  return w;
}

bool CopyBbtGallery(const std::string& dst, int images_per_subject) {
  const std::string src = BbtGalleryDir();
  if (src.empty()) return false;
  std::error_code ec;
  for (const std::string& s : BbtSubjects()) {
    fs::create_directories(dst + "/" + s, ec);
    for (int i = 1; i <= images_per_subject; ++i) {
      const std::string name = absl::StrCat(s, i, ".png");
      fs::copy_file(src + "/" + s + "/" + name, dst + "/" + s + "/" + name,
                    fs::copy_options::overwrite_existing, ec);
      if (ec) return false;
    }
  }
  return true;
}

ProcessResult PartnerNode(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {Env("FEDFACE_PARTNER_NODE")};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv);
}

std::map<std::string, StoredImage> ReadGallery(const std::string& db) {
  return ReadGallery(partner::SqliteGallerySpec(db));
}

std::map<std::string, StoredImage> ReadGallery(const partner::GalleryStoreSpec& spec) {
  std::map<std::string, StoredImage> out;
  absl::StatusOr<std::unique_ptr<partner::GalleryStore>> store = partner::OpenGalleryStore(spec);
  if (!store.ok()) return out;
  // Every image: none is recorded under the empty model version.
  absl::StatusOr<std::vector<partner::ImageRecord>> images = (*store)->StaleImages("");
  if (!images.ok()) return out;
  std::map<int64_t, std::string> key_of;
  std::set<std::string> versions;
  for (const partner::ImageRecord& r : *images) {
    const std::string key = r.relative_path
                                ? *r.relative_path
                                : absl::StrCat("upload:", r.subject, ":", r.content_sha256);
    StoredImage& s = out[key];
    s.image_id = r.id;
    s.subject = r.subject;
    s.content_sha256 = r.content_sha256;
    s.status = r.status == partner::ImageStatus::kFailed ? "failed" : "enrolled";
    s.failure_reason = r.failure_reason;
    s.model_version = r.model_version;
    key_of[r.id] = key;
    versions.insert(r.model_version);
  }
  for (const std::string& v : versions) {
    absl::StatusOr<std::vector<partner::StoredEmbedding>> e = (*store)->Embeddings(v);
    if (!e.ok()) continue;
    for (const partner::StoredEmbedding& se : *e) {
      auto it = key_of.find(se.image_id);
      if (it != key_of.end()) out[it->second].embeddings.push_back(se.embedding);
    }
  }
  return out;
}

}  // namespace fedface::testing
