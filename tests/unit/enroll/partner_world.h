// A partner's world on disk for tests that run partner_node as a real process: a model cache with
// the signed test package installed and active (through ModelCache's own staging, Install and
// PointActiveAt), a partner configuration file, a copy of the bbt gallery, and child processes.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/engine/embedding.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "tests/support/child_process.h"

namespace fedface::testing {

// ../shared/datasets/faceapi-bbt/gallery, or "" when absent.
std::string BbtGalleryDir();
// The eight bbt subjects, sorted.
const std::vector<std::string>& BbtSubjects();

struct PartnerWorld {
  std::string dir;          // everything lives below it
  std::string cache_dir;    // model cache
  std::string config;       // partner.yaml
  std::string gallery_db;   // gallery.db
  std::string gallery_dir;  // a private copy of the bbt gallery (when requested)
};

struct WorldOptions {
  std::string version = "1.0.0";  // the active model version
  int commit_batch_images = 0;    // gallery.commit_batch_images; 0: the default
  std::string extra_yaml;         // whole sections appended, e.g. "local_api:\n  listen: ...\n"
  std::string gallery_yaml;  // lines added to the gallery section, e.g. "  store: postgresql\n"
};

// Makes dir/ with a model cache holding the test package as options.version (re-signed with the
// test vendor key when it is not the package's own "1.0.0") and active, and partner.yaml with
// placeholder vendor TLS files (no vendor is contacted), gallery.db and engine.workers 2. On
// failure world.dir is "" and *error says why.
PartnerWorld MakePartnerWorld(const std::string& prefix, const WorldOptions& options,
                              std::string* error);

// Installs the test package as `version` into the cache and, when `activate`, makes it active.
bool InstallTestPackage(const std::string& cache_dir, const std::string& version, bool activate,
                        std::string* error);

// Copies `images_per_subject` images of each bbt subject (1..5) to dst/<subject>/.
bool CopyBbtGallery(const std::string& dst, int images_per_subject);

// `partner_node ARGS...` to completion.
ProcessResult PartnerNode(const std::vector<std::string>& args);

// One stored gallery image with its embeddings, as a test compares stores.
struct StoredImage {
  int64_t image_id = 0;
  std::string subject;
  std::string content_sha256;
  std::string status;  // "enrolled" | "failed"
  std::string failure_reason;
  std::string model_version;
  std::vector<Embedding> embeddings;
};

// relative_path -> image, read from the store at `db` (opened read-write, WAL lets the writer
// run on). Images without a path are keyed "upload:<subject>:<sha256>".
std::map<std::string, StoredImage> ReadGallery(const std::string& db);
// The same from any store (e.g. the PostgreSQL gallery of several enrolment hosts).
std::map<std::string, StoredImage> ReadGallery(const partner::GalleryStoreSpec& spec);

}  // namespace fedface::testing
