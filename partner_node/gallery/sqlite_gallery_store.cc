#include "partner_node/gallery/sqlite_gallery_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/gallery_store_factory.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {
namespace {

// PRAGMA application_id "FFGS": a ledger or any other SQLite file is refused, not reused.
constexpr int kGalleryApplicationId = 0x46464753;
constexpr size_t kEmbeddingBytes = sizeof(float) * kEmbeddingDim;
static_assert(sizeof(Embedding) == kEmbeddingBytes, "Embedding must be 128 packed floats");

constexpr char kSchema[] = R"sql(
CREATE TABLE subjects (
  id   INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE CHECK (length(name) > 0)
);
CREATE TABLE images (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  subject_id     INTEGER NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
  content_sha256 TEXT NOT NULL CHECK (length(content_sha256) = 64),
  relative_path  TEXT UNIQUE,
  status         TEXT NOT NULL CHECK (status IN ('enrolled', 'failed')),
  failure_reason TEXT NOT NULL DEFAULT '',
  model_version  TEXT NOT NULL
);
CREATE INDEX images_by_subject ON images(subject_id);
CREATE INDEX images_by_model ON images(model_version);
CREATE UNIQUE INDEX uploads_by_content ON images(subject_id, content_sha256)
  WHERE relative_path IS NULL;
CREATE TABLE embeddings (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  image_id      INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  face_index    INTEGER NOT NULL,
  model_version TEXT NOT NULL,
  vector        BLOB NOT NULL CHECK (length(vector) = 512),
  UNIQUE (image_id, face_index)
);
CREATE INDEX embeddings_by_model ON embeddings(model_version);
)sql";

constexpr char kEmbeddingColumns[] =
    "SELECT e.id, e.image_id, s.id, s.name, e.face_index, e.model_version, e.vector "
    "FROM embeddings e JOIN images i ON i.id = e.image_id JOIN subjects s ON s.id = i.subject_id ";

constexpr char kImageColumns[] =
    "SELECT i.id, s.id, s.name, i.content_sha256, i.relative_path, i.status, i.failure_reason, "
    "i.model_version FROM images i JOIN subjects s ON s.id = i.subject_id ";

StoredEmbedding ReadEmbedding(const sqlite::Statement& stmt) {
  StoredEmbedding e;
  e.id = stmt.Int(0);
  e.image_id = stmt.Int(1);
  e.subject_id = stmt.Int(2);
  e.subject = stmt.Text(3);
  e.face_index = static_cast<int>(stmt.Int(4));
  e.model_version = stmt.Text(5);
  const std::string_view blob = stmt.Blob(6);
  // The schema's CHECK guarantees 512 bytes; a short blob from a damaged file stays zero-padded.
  std::memcpy(e.embedding.data(), blob.data(), std::min(blob.size(), kEmbeddingBytes));
  return e;
}

ImageRecord ReadImage(const sqlite::Statement& stmt) {
  ImageRecord r;
  r.id = stmt.Int(0);
  r.subject_id = stmt.Int(1);
  r.subject = stmt.Text(2);
  r.content_sha256 = stmt.Text(3);
  r.relative_path = stmt.OptionalText(4);
  r.status = stmt.Text(5) == "failed" ? ImageStatus::kFailed : ImageStatus::kEnrolled;
  r.failure_reason = stmt.Text(6);
  r.model_version = stmt.Text(7);
  return r;
}

template <typename T, typename Read>
absl::StatusOr<std::vector<T>> Collect(sqlite::Statement& stmt, Read read) {
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(auto row, stmt.Step());
    if (!row) return out;
    out.push_back(read(stmt));
  }
}

// Deletes images rows matching `where` (bound by `bind`), collecting their embedding ids first.
absl::Status DeleteImages(sqlite3* db, std::string_view where,
                          const std::function<void(sqlite::Statement&)>& bind,
                          std::vector<int64_t>& removed) {
  ASSIGN_OR_RETURN(
      auto ids,
      sqlite::Statement::Prepare(
          db,
          absl::StrCat("SELECT e.id FROM embeddings e JOIN images i ON i.id = e.image_id WHERE ",
                       std::string(where))));
  bind(ids);
  ASSIGN_OR_RETURN(auto got,
                   Collect<int64_t>(ids, [](const sqlite::Statement& s) { return s.Int(0); }));
  removed.insert(removed.end(), got.begin(), got.end());
  ASSIGN_OR_RETURN(auto del,
                   sqlite::Statement::Prepare(
                       db, absl::StrCat("DELETE FROM images AS i WHERE ", std::string(where))));
  bind(del);
  return del.Run();
}

}  // namespace

absl::StatusOr<std::unique_ptr<GalleryStore>> SqliteGalleryStore::Open(const std::string& path,
                                                                       bool must_exist) {
  sqlite::OpenOptions options;
  options.create_if_missing = !must_exist;
  ASSIGN_OR_RETURN(sqlite3 * db,
                   sqlite::OpenWithSchema(path, options, kGalleryApplicationId,
                                          kGallerySchemaVersion, kSchema, "a gallery store"));
  return std::unique_ptr<GalleryStore>(new SqliteGalleryStore(path, db));
}

SqliteGalleryStore::~SqliteGalleryStore() { sqlite::Close(db_); }

absl::StatusOr<GalleryChange> SqliteGalleryStore::CommitBatch(
    const std::vector<ImageOutcome>& batch) {
  RETURN_IF_ERROR(CheckBatch(batch));
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_));

  auto add_subject = sqlite::Statement::Prepare(
      db_, "INSERT INTO subjects (name) VALUES (?) ON CONFLICT (name) DO NOTHING");
  auto subject_id = sqlite::Statement::Prepare(db_, "SELECT id FROM subjects WHERE name = ?");
  auto add_image = sqlite::Statement::Prepare(
      db_,
      "INSERT INTO images (subject_id, content_sha256, relative_path, status, failure_reason, "
      "model_version) VALUES (?, ?, ?, ?, ?, ?) RETURNING id");
  auto add_embedding = sqlite::Statement::Prepare(
      db_,
      "INSERT INTO embeddings (image_id, face_index, model_version, vector) VALUES (?, ?, ?, ?) "
      "RETURNING id");
  for (auto* st : {&add_subject, &subject_id, &add_image, &add_embedding}) {
    if (!st->ok()) return st->status();
  }

  GalleryChange change;
  for (const ImageOutcome& o : batch) {
    add_subject->Reset();
    add_subject->Bind(1, o.subject);
    RETURN_IF_ERROR(add_subject->Run());
    subject_id->Reset();
    subject_id->Bind(1, o.subject);
    ASSIGN_OR_RETURN(auto found, subject_id->Step());
    if (!found)
      return absl::InternalError(absl::StrCat(location(), ": subject vanished mid-batch"));
    const int64_t sid = subject_id->Int(0);

    // The previous version of this image, if any, goes with its embeddings.
    RETURN_IF_ERROR(
        o.relative_path
            ? DeleteImages(
                  db_, "i.relative_path = ?",
                  [&](sqlite::Statement& st) { st.Bind(1, *o.relative_path); },
                  change.removed_embedding_ids)
            : DeleteImages(
                  db_, "i.relative_path IS NULL AND i.subject_id = ? AND i.content_sha256 = ?",
                  [&](sqlite::Statement& st) { st.Bind(1, sid).Bind(2, o.content_sha256); },
                  change.removed_embedding_ids));

    add_image->Reset();
    add_image->Bind(1, sid)
        .Bind(2, o.content_sha256)
        .Bind(3, o.relative_path)
        .Bind(4, std::string_view(o.failure_reason ? "failed" : "enrolled"))
        .Bind(5, std::string_view(o.failure_reason ? *o.failure_reason : std::string()))
        .Bind(6, o.model_version);
    RETURN_IF_ERROR(add_image->Step().status());
    const int64_t image_id = add_image->Int(0);
    RETURN_IF_ERROR(add_image->Run());

    for (size_t f = 0; f < o.faces.size(); ++f) {
      add_embedding->Reset();
      add_embedding->Bind(1, image_id)
          .Bind(2, static_cast<int64_t>(f))
          .Bind(3, o.model_version)
          .BindBlob(4, o.faces[f].data(), kEmbeddingBytes);
      RETURN_IF_ERROR(add_embedding->Step().status());
      const int64_t id = add_embedding->Int(0);
      RETURN_IF_ERROR(add_embedding->Run());
      change.added.push_back(AddedEmbedding(id, image_id, sid, o, f));
    }
  }
  RETURN_IF_ERROR(tx->Commit());

  DropAddedAndRemoved(change);
  return change;
}

absl::StatusOr<bool> SqliteGalleryStore::IsCurrentFile(std::string_view relative_path,
                                                       std::string_view content_sha256,
                                                       std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st,
                   sqlite::Statement::Prepare(db_,
                                              "SELECT 1 FROM images WHERE relative_path = ? AND "
                                              "content_sha256 = ? AND model_version = ?"));
  st.Bind(1, relative_path).Bind(2, content_sha256).Bind(3, model_version);
  return st.Step();
}

absl::StatusOr<std::vector<std::string>> SqliteGalleryStore::FilePaths() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st, sqlite::Statement::Prepare(
                                db_,
                                "SELECT relative_path FROM images WHERE relative_path IS NOT NULL "
                                "ORDER BY relative_path"));
  return Collect<std::string>(st, [](const sqlite::Statement& s) { return s.Text(0); });
}

absl::StatusOr<GalleryChange> SqliteGalleryStore::RemoveFiles(
    const std::vector<std::string>& relative_paths) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_));
  GalleryChange change;
  for (const std::string& p : relative_paths) {
    RETURN_IF_ERROR(DeleteImages(
        db_, "i.relative_path = ?", [&](sqlite::Statement& st) { st.Bind(1, p); },
        change.removed_embedding_ids));
  }
  RETURN_IF_ERROR(tx->Commit());
  return change;
}

absl::StatusOr<std::vector<ImageRecord>> SqliteGalleryStore::StaleImages(
    std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto st, sqlite::Statement::Prepare(
                   db_, absl::StrCat(kImageColumns, "WHERE i.model_version != ? ORDER BY i.id")));
  st.Bind(1, model_version);
  return Collect<ImageRecord>(st, ReadImage);
}

absl::StatusOr<std::vector<ImageRecord>> SqliteGalleryStore::Failures(
    std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st,
                   sqlite::Statement::Prepare(
                       db_, absl::StrCat(kImageColumns,
                                         "WHERE i.status = 'failed' AND i.model_version = ? "
                                         "ORDER BY s.name, i.relative_path, i.id")));
  st.Bind(1, model_version);
  return Collect<ImageRecord>(st, ReadImage);
}

absl::Status SqliteGalleryStore::WalkEmbeddings(
    std::string_view where_and_order, std::string_view model_version,
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st,
                   sqlite::Statement::Prepare(
                       db_, absl::StrCat(kEmbeddingColumns, std::string(where_and_order))));
  if (!model_version.empty()) st.Bind(1, model_version);
  while (true) {
    ASSIGN_OR_RETURN(auto row, st.Step());
    if (!row) return absl::OkStatus();
    RETURN_IF_ERROR(fn(ReadEmbedding(st)));
  }
}

absl::Status SqliteGalleryStore::ForEachEmbedding(
    std::string_view model_version,
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  return WalkEmbeddings("WHERE e.model_version = ? ORDER BY s.name, e.image_id, e.face_index",
                        model_version, fn);
}

absl::Status SqliteGalleryStore::ForEachStoredEmbedding(
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  return WalkEmbeddings("ORDER BY e.id", "", fn);
}

absl::StatusOr<std::vector<ImageRecord>> SqliteGalleryStore::Images() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st,
                   sqlite::Statement::Prepare(db_, absl::StrCat(kImageColumns, "ORDER BY i.id")));
  return Collect<ImageRecord>(st, ReadImage);
}

absl::StatusOr<std::vector<StoredEmbedding>> SqliteGalleryStore::SubjectEmbeddings(
    std::string_view subject, std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto st, sqlite::Statement::Prepare(
                                db_, absl::StrCat(kEmbeddingColumns,
                                                  "WHERE s.name = ? AND e.model_version = ? "
                                                  "ORDER BY e.image_id, e.face_index")));
  st.Bind(1, subject).Bind(2, model_version);
  return Collect<StoredEmbedding>(st, ReadEmbedding);
}

absl::StatusOr<std::vector<SubjectRecord>> SqliteGalleryStore::Subjects() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto st,
      sqlite::Statement::Prepare(
          db_,
          "SELECT s.id, s.name, (SELECT count(*) FROM images i WHERE i.subject_id = s.id AND "
          "i.status = 'enrolled') FROM subjects s ORDER BY s.name"));
  return Collect<SubjectRecord>(st, [](const sqlite::Statement& s) {
    return SubjectRecord{s.Int(0), s.Text(1), s.Int(2)};
  });
}

absl::StatusOr<GalleryChange> SqliteGalleryStore::DeleteSubject(std::string_view subject) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_));
  GalleryChange change;
  ASSIGN_OR_RETURN(auto ids,
                   sqlite::Statement::Prepare(
                       db_,
                       "SELECT e.id FROM embeddings e JOIN images i ON i.id = e.image_id "
                       "JOIN subjects s ON s.id = i.subject_id WHERE s.name = ? ORDER BY e.id"));
  ids.Bind(1, subject);
  ASSIGN_OR_RETURN(auto got,
                   Collect<int64_t>(ids, [](const sqlite::Statement& s) { return s.Int(0); }));
  change.removed_embedding_ids = std::move(got);
  // Cascades to images and embeddings (foreign_keys=ON).
  ASSIGN_OR_RETURN(auto del, sqlite::Statement::Prepare(
                                 db_, "DELETE FROM subjects WHERE name = ? RETURNING id"));
  del.Bind(1, subject);
  ASSIGN_OR_RETURN(auto row, del.Step());
  if (!row)
    return absl::NotFoundError(
        absl::StrCat(location(), ": no subject '", std::string(subject), "'"));
  RETURN_IF_ERROR(del.Run());
  RETURN_IF_ERROR(tx->Commit());
  return change;
}

absl::StatusOr<GalleryCounts> SqliteGalleryStore::Counts(std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto st,
      sqlite::Statement::Prepare(
          db_,
          "SELECT (SELECT count(*) FROM subjects), "
          "(SELECT count(*) FROM images WHERE model_version = ?1 AND status = 'enrolled'), "
          "(SELECT count(*) FROM images WHERE model_version = ?1 AND status = 'failed'), "
          "(SELECT count(*) FROM embeddings WHERE model_version = ?1), "
          "(SELECT count(*) FROM images WHERE model_version != ?1)"));
  st.Bind(1, model_version);
  RETURN_IF_ERROR(st.Step().status());
  GalleryCounts c;
  c.subjects = st.Int(0);
  c.enrolled_images = st.Int(1);
  c.failed_images = st.Int(2);
  c.embeddings = st.Int(3);
  c.stale_images = st.Int(4);
  return c;
}

}  // namespace fedface::partner
