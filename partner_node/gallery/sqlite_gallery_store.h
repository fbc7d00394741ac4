// The embedded gallery store: one SQLite database file (WAL, synchronous=FULL, foreign keys on),
// the default for a partner on one machine (gallery.store: sqlite).
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
// Every CommitBatch is one IMMEDIATE transaction, fsynced before it returns.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "partner_node/gallery/gallery_store.h"

struct sqlite3;

namespace fedface::partner {

inline constexpr int kGallerySchemaVersion = 1;

class SqliteGalleryStore final : public GalleryStore {
 public:
  // Opens the store at `path`; a missing file is created with the current schema unless
  // must_exist (then NotFound naming the file). An existing file must carry
  // kGallerySchemaVersion (older/newer: FailedPrecondition naming the file and both versions).
  // Fails naming the file when it cannot be opened or is not a gallery store.
  static absl::StatusOr<std::unique_ptr<GalleryStore>> Open(const std::string& path,
                                                            bool must_exist = false);
  ~SqliteGalleryStore() override;

  absl::StatusOr<GalleryChange> CommitBatch(const std::vector<ImageOutcome>& batch) override;
  absl::StatusOr<bool> IsCurrentFile(std::string_view relative_path,
                                     std::string_view content_sha256,
                                     std::string_view model_version) const override;
  absl::StatusOr<std::vector<std::string>> FilePaths() const override;
  absl::StatusOr<GalleryChange> RemoveFiles(
      const std::vector<std::string>& relative_paths) override;
  absl::StatusOr<std::vector<ImageRecord>> StaleImages(
      std::string_view model_version) const override;
  absl::StatusOr<std::vector<ImageRecord>> Failures(std::string_view model_version) const override;
  absl::Status ForEachEmbedding(
      std::string_view model_version,
      const std::function<absl::Status(const StoredEmbedding&)>& fn) const override;
  absl::StatusOr<std::vector<StoredEmbedding>> SubjectEmbeddings(
      std::string_view subject, std::string_view model_version) const override;
  absl::StatusOr<std::vector<SubjectRecord>> Subjects() const override;
  absl::StatusOr<GalleryChange> DeleteSubject(std::string_view subject) override;
  absl::StatusOr<GalleryCounts> Counts(std::string_view model_version) const override;
  absl::Status ForEachStoredEmbedding(
      const std::function<absl::Status(const StoredEmbedding&)>& fn) const override;
  absl::StatusOr<std::vector<ImageRecord>> Images() const override;

 private:
  SqliteGalleryStore(std::string path, sqlite3* db) : GalleryStore(std::move(path)), db_(db) {}

  absl::Status WalkEmbeddings(std::string_view where_and_order, std::string_view model_version,
                              const std::function<absl::Status(const StoredEmbedding&)>& fn) const;

  sqlite3* const db_;
  mutable std::mutex mu_;  // one connection; statements are serialised
};

}  // namespace fedface::partner
