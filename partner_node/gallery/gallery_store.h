// The gallery store: the partner's enrolled subjects, image content hashes, failures to enrol and
// face embeddings, in an embedded SQLite database (WAL, synchronous=FULL, foreign keys on). It is
// local only: nothing read from it may cross the boundary except through the egress guard's
// aggregates.
//
// Schema (version kGallerySchemaVersion, kept in PRAGMA user_version):
//   subjects   (id, name UNIQUE)
//   images     (id, subject_id -> subjects ON DELETE CASCADE, content_sha256,
//               relative_path UNIQUE, NULL for local-API enrolments which are instead UNIQUE by
//               (subject_id, content_sha256), status 'enrolled'|'failed', failure_reason,
//               model_version)
//   embeddings (id AUTOINCREMENT so ids are never reused, image_id -> images ON DELETE CASCADE,
//               face_index, model_version, vector BLOB of 128 float32 (512 bytes, host order),
//               UNIQUE(image_id, face_index))
// An image is keyed by its file (relative_path) when it came from the gallery folder, and by its
// content within the subject when it came through the local API; its content hash tells a changed
// file from an unchanged one.
//
// Crash safety: every CommitBatch is one transaction, fsynced before it returns. A process killed
// at any moment (kill -9) leaves every returned batch intact and no part of an unreturned one;
// re-committing outcomes for the same images (a resumed run) replaces rows, never duplicates them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/engine/embedding.h"

struct sqlite3;

namespace fedface::partner {

inline constexpr int kGallerySchemaVersion = 1;

// What the engine made of one image, ready to be stored.
struct ImageOutcome {
  std::string subject;         // non-empty
  std::string content_sha256;  // 64 lower-case hex of the image file's bytes
  // Path relative to the gallery root ("alice/1.jpg"); nullopt for local-API enrolments.
  std::optional<std::string> relative_path;
  std::string model_version;  // non-empty: the model that produced `faces`
  // Set: the image failed to enrol for this reason (no face, undecodable, ...); faces is empty.
  std::optional<std::string> failure_reason;
  std::vector<Embedding> faces;  // enrolled: at least one; face_index = position here
};

// One stored embedding, with the subject it belongs to.
struct StoredEmbedding {
  int64_t id = 0;  // embeddings row id; the id FaceIndex uses
  int64_t image_id = 0;
  int64_t subject_id = 0;
  std::string subject;
  int face_index = 0;
  std::string model_version;
  Embedding embedding{};
};

enum class ImageStatus { kEnrolled, kFailed };

struct ImageRecord {
  int64_t id = 0;
  int64_t subject_id = 0;
  std::string subject;
  std::string content_sha256;
  std::optional<std::string> relative_path;
  ImageStatus status = ImageStatus::kEnrolled;
  std::string failure_reason;  // empty when enrolled
  std::string model_version;
};

struct SubjectRecord {
  int64_t id = 0;
  std::string name;
  int64_t enrolled_images = 0;  // any model version
};

// What a CommitBatch or DeleteSubject changed in the embeddings table, so that a FaceIndex can
// follow the store (FaceIndex::Apply).
struct GalleryChange {
  std::vector<StoredEmbedding> added;
  std::vector<int64_t> removed_embedding_ids;
};

struct GalleryCounts {
  int64_t subjects = 0;
  int64_t enrolled_images = 0;  // status enrolled under model_version
  int64_t failed_images = 0;    // status failed under model_version
  int64_t embeddings = 0;       // under model_version
  int64_t stale_images = 0;     // recorded under another model version (need re-embedding)
};

class GalleryStore {
 public:
  // Opens or creates the store at `path`. A new file gets the current schema; an existing one
  // must carry kGallerySchemaVersion (older/newer: FailedPrecondition naming the file and both
  // versions). Fails naming the file when it cannot be opened or is not a gallery store.
  static absl::StatusOr<std::unique_ptr<GalleryStore>> Open(const std::string& path);

  ~GalleryStore();
  GalleryStore(const GalleryStore&) = delete;
  GalleryStore& operator=(const GalleryStore&) = delete;

  // Stores a batch of outcomes in ONE transaction, upserting each image by its key: the row of
  // the same relative_path (a changed file: new content replaces the old row of that path), or,
  // without a path, the row of the same (subject, content_sha256). The old row, if any, and its
  // embeddings are replaced by a new row with `faces` (face_index = position). Subjects are
  // created as needed.
  // REQUIRES: each outcome well-formed (see ImageOutcome), else InvalidArgument naming the item
  //           and nothing of the batch is written.
  // ENSURES:  on OK the whole batch is durable (fsynced); on error none of it is written. Returns
  //           what changed in the embeddings table (added rows with their ids, removed ids).
  //           Re-committing the same outcomes yields the same rows, never duplicates.
  // Thread-safe (batches are serialised).
  absl::StatusOr<GalleryChange> CommitBatch(const std::vector<ImageOutcome>& batch);

  // True when the file at relative_path is recorded with this content under model_version
  // (enrolled or failed): an incremental enrolment skips it. Thread-safe.
  absl::StatusOr<bool> IsCurrentFile(std::string_view relative_path,
                                     std::string_view content_sha256,
                                     std::string_view model_version) const;

  // Relative paths of every image that came from the gallery folder, sorted. Thread-safe.
  absl::StatusOr<std::vector<std::string>> FilePaths() const;

  // Removes the rows of files that are gone from the gallery folder, in one transaction; unknown
  // paths are ignored. Returns the removed embedding ids. Thread-safe.
  absl::StatusOr<GalleryChange> RemoveFiles(const std::vector<std::string>& relative_paths);

  // Images recorded under a model version other than model_version: what a model change makes
  // stale (all of them after a switch). Ordered by id. Thread-safe.
  absl::StatusOr<std::vector<ImageRecord>> StaleImages(std::string_view model_version) const;

  // Failures to enrol under model_version, ordered by subject then path (local listing only).
  absl::StatusOr<std::vector<ImageRecord>> Failures(std::string_view model_version) const;

  // Calls fn for every embedding made by model_version, ordered by subject name, image id, face
  // index; streams rows so a large gallery need not fit in memory twice. Stops early and returns
  // fn's error when fn returns non-OK. Holds the store's lock for the walk: fn must not call back
  // into this store.
  absl::Status ForEachEmbedding(
      std::string_view model_version,
      const std::function<absl::Status(const StoredEmbedding&)>& fn) const;

  // Convenience: ForEachEmbedding collected into a vector.
  absl::StatusOr<std::vector<StoredEmbedding>> Embeddings(std::string_view model_version) const;

  // Embeddings of one subject under model_version (empty when unknown). Thread-safe.
  absl::StatusOr<std::vector<StoredEmbedding>> SubjectEmbeddings(
      std::string_view subject, std::string_view model_version) const;

  // All subjects ordered by name. Thread-safe.
  absl::StatusOr<std::vector<SubjectRecord>> Subjects() const;

  // Removes the subject with all its images and embeddings in one transaction; returns the removed
  // embedding ids. NotFound when there is no such subject. Thread-safe.
  absl::StatusOr<GalleryChange> DeleteSubject(std::string_view subject);

  absl::StatusOr<GalleryCounts> Counts(std::string_view model_version) const;

  const std::string& path() const { return path_; }

 private:
  GalleryStore(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  const std::string path_;
  sqlite3* const db_;
  mutable std::mutex mu_;  // one connection; statements are serialised
};

}  // namespace fedface::partner
