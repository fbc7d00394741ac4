#include "partner_node/gallery/postgresql_gallery_store.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/common/status_macros.h"

namespace fedface::partner {
namespace {

constexpr size_t kEmbeddingBytes = sizeof(float) * kEmbeddingDim;
static_assert(sizeof(Embedding) == kEmbeddingBytes, "Embedding must be 128 packed floats");
constexpr char kApplication[] = "fedface gallery";
// pg_advisory_xact_lock key: "FFGS", so hosts opening a new database create the schema once.
constexpr int64_t kSchemaLockKey = 0x46464753;
constexpr int kCommitAttempts = 5;
// pg_advisory_xact_lock key: "FFGC", held from a writer's change-log row to its COMMIT, so the
// log's sequence numbers become visible in order (a follower never skips a later-committed
// lower number).
constexpr int64_t kChangeLogLockKey = 0x46464743;
// pg_advisory_xact_lock key: "FFGP", held by PruneChanges and StartFollowing: a follower
// registers either before a prune reads the followers or after it committed.
constexpr int64_t kPruneLockKey = 0x46464750;
// The backoff between reconnection attempts (reconnect_within).
constexpr absl::Duration kFirstReconnectPause = absl::Milliseconds(100);
constexpr absl::Duration kLongestReconnectPause = absl::Seconds(5);
// Change-log rows one ChangesAfter reads at most (a follower far behind catches up in steps).
constexpr int kChangesPerRead = 1000;

constexpr char kSchemaV1[] = R"sql(
CREATE TABLE fedface_gallery_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE subjects (
  id   bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (length(name) > 0)
);
CREATE TABLE enrolment_batches (
  id           bigserial PRIMARY KEY,
  host         text NOT NULL,
  images       integer NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE images (
  id             bigserial PRIMARY KEY,
  subject_id     bigint NOT NULL REFERENCES subjects(id) ON DELETE CASCADE,
  content_sha256 text NOT NULL CHECK (length(content_sha256) = 64),
  relative_path  text UNIQUE,
  status         text NOT NULL CHECK (status IN ('enrolled', 'failed')),
  failure_reason text NOT NULL DEFAULT '',
  model_version  text NOT NULL,
  batch_id       bigint REFERENCES enrolment_batches(id) ON DELETE SET NULL
);
CREATE INDEX images_by_subject ON images(subject_id);
CREATE INDEX images_by_model ON images(model_version);
CREATE UNIQUE INDEX uploads_by_content ON images(subject_id, content_sha256)
  WHERE relative_path IS NULL;
CREATE TABLE embeddings (
  id            bigserial PRIMARY KEY,
  image_id      bigint NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  face_index    integer NOT NULL,
  model_version text NOT NULL,
  vector        bytea NOT NULL CHECK (length(vector) = 512),
  UNIQUE (image_id, face_index)
);
CREATE INDEX embeddings_by_model ON embeddings(model_version);
CREATE INDEX embeddings_by_image ON embeddings(image_id);
)sql";

// Migrations[v - 1] takes a database from version v to v + 1; a new database gets kSchemaV1 and
// then every migration.
const std::vector<std::string_view>& Migrations() {
  static const std::vector<std::string_view> migrations = {
      // 1 -> 2: the shared enrolment pool (several hosts enrol one gallery).
      R"sql(
CREATE TABLE enrolment_pool (
  relative_path  text PRIMARY KEY,
  model_version  text NOT NULL,
  content_sha256 text NOT NULL,
  host           text,
  lease_until    timestamptz
);
CREATE INDEX enrolment_pool_by_model ON enrolment_pool(model_version, lease_until);
)sql",
      // 2 -> 3: the change log a serving host follows (ChangesAfter).
      R"sql(
CREATE TABLE gallery_changes (
  seq          bigserial PRIMARY KEY,
  added        bigint[] NOT NULL,
  removed      bigint[] NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);
)sql",
      // 3 -> 4: what each follower applied, so the change log can be pruned.
      R"sql(
CREATE TABLE gallery_followers (
  follower text PRIMARY KEY,
  position bigint NOT NULL,
  seen_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO fedface_gallery_meta VALUES ('changes_pruned_through', '0');
)sql",
  };
  return migrations;
}

constexpr char kEmbeddingColumns[] =
    "SELECT e.id, e.image_id, s.id, s.name, e.face_index::bigint, e.model_version, e.vector "
    "FROM embeddings e JOIN images i ON i.id = e.image_id JOIN subjects s ON s.id = i.subject_id ";

constexpr char kImageColumns[] =
    "SELECT i.id, s.id, s.name, i.content_sha256, i.relative_path, i.status, i.failure_reason, "
    "i.model_version FROM images i JOIN subjects s ON s.id = i.subject_id ";

StoredEmbedding ReadEmbedding(const pg::Result& r, int row) {
  StoredEmbedding e;
  e.id = r.Int(row, 0);
  e.image_id = r.Int(row, 1);
  e.subject_id = r.Int(row, 2);
  e.subject = r.Text(row, 3);
  e.face_index = static_cast<int>(r.Int(row, 4));
  e.model_version = r.Text(row, 5);
  const std::string_view blob = r.Bytes(row, 6);
  std::memcpy(e.embedding.data(), blob.data(), std::min(blob.size(), kEmbeddingBytes));
  return e;
}

ImageRecord ReadImage(const pg::Result& r, int row) {
  ImageRecord i;
  i.id = r.Int(row, 0);
  i.subject_id = r.Int(row, 1);
  i.subject = r.Text(row, 2);
  i.content_sha256 = r.Text(row, 3);
  i.relative_path = r.OptionalText(row, 4);
  i.status = r.Text(row, 5) == "failed" ? ImageStatus::kFailed : ImageStatus::kEnrolled;
  i.failure_reason = r.Text(row, 6);
  i.model_version = r.Text(row, 7);
  return i;
}

std::vector<int64_t> Ids(const pg::Result& r) {
  std::vector<int64_t> ids;
  for (int row = 0; row < r.rows(); ++row) ids.push_back(r.Int(row, 0));
  return ids;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) std::strcpy(name, "unknown");
  return absl::StrCat(name, ":", getpid());
}

// Checks, creates or migrates the schema in one transaction under the advisory lock.
absl::Status EnsureSchema(const pg::Connection& db, bool must_exist) {
  ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(db));
  if (auto lock = db.Exec("SELECT pg_advisory_xact_lock($1)", pg::Params().Int(kSchemaLockKey));
      !lock.ok()) {
    return lock.status();
  }
  ASSIGN_OR_RETURN(
      auto tables,
      db.Exec("SELECT to_regclass('fedface_gallery_meta') IS NOT NULL, "
              "(to_regclass('subjects') IS NOT NULL OR to_regclass('images') IS NOT NULL OR "
              "to_regclass('embeddings') IS NOT NULL)"));
  const bool has_meta = tables.Bytes(0, 0) == std::string_view("\1", 1);
  const bool has_ours = tables.Bytes(0, 1) == std::string_view("\1", 1);
  absl::StatusOr<pg::Result> meta = absl::UnknownError("unread");
  if (!has_meta) {
    if (has_ours) {
      return absl::FailedPreconditionError(
          absl::StrCat(db.location(),
                       ": not a gallery store (tables subjects/images/embeddings exist "
                       "without fedface_gallery_meta)"));
    }
    if (must_exist) return absl::NotFoundError(absl::StrCat(db.location(), ": no gallery store"));
    RETURN_IF_ERROR(db.ExecScript(kSchemaV1));
    ASSIGN_OR_RETURN(
        auto meta,
        db.Exec(
            "INSERT INTO fedface_gallery_meta VALUES ('application', $1), ('schema_version', '1')",
            pg::Params().Text(kApplication)));
  }
  meta = db.Exec(
      "SELECT (SELECT value FROM fedface_gallery_meta WHERE key = 'application'), "
      "(SELECT value FROM fedface_gallery_meta WHERE key = 'schema_version')");
  if (!meta.ok()) return meta.status();
  if (meta->OptionalText(0, 0) != std::optional<std::string>(kApplication)) {
    return absl::FailedPreconditionError(
        absl::StrCat(db.location(), ": not a gallery store (fedface_gallery_meta.application)"));
  }
  int version = 0;
  const std::string text = meta->OptionalText(0, 1).value_or("");
  if (!absl::SimpleAtoi(text, &version) || version < 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(db.location(), ": gallery schema version '", text, "' is not a version"));
  }
  if (version > kPostgresqlGallerySchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        db.location(), ": a gallery store with schema version ", version,
        ", this build reads version ", kPostgresqlGallerySchemaVersion, " (upgrade fedface)"));
  }
  if (version == kPostgresqlGallerySchemaVersion) return tx->Commit();
  for (int v = version; v < kPostgresqlGallerySchemaVersion; ++v) {
    RETURN_IF_ERROR(db.ExecScript(Migrations()[v - 1]));
  }
  ASSIGN_OR_RETURN(
      auto bump, db.Exec("UPDATE fedface_gallery_meta SET value = $1 WHERE key = 'schema_version'",
                         pg::Params().Int(kPostgresqlGallerySchemaVersion)));
  return tx->Commit();
}

// "{1,2,3}": a bigint[] parameter in text form.
std::string IdArray(const std::vector<int64_t>& ids) {
  std::string out = "{";
  for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&out, i ? "," : "", ids[i]);
  return out + "}";
}

// Appends a write's embedding changes to the change log, last in its transaction: the lock is
// held until COMMIT, so rows commit in sequence order. Nothing is logged when the index is
// unaffected (a batch of failures to enrol).
absl::Status LogChange(const pg::Connection& db, const GalleryChange& change) {
  if (change.added.empty() && change.removed_embedding_ids.empty()) return absl::OkStatus();
  std::vector<int64_t> added;
  for (const StoredEmbedding& e : change.added) added.push_back(e.id);
  RETURN_IF_ERROR(
      db.Exec("SELECT pg_advisory_xact_lock($1)", pg::Params().Int(kChangeLogLockKey)).status());
  RETURN_IF_ERROR(
      db.Exec("INSERT INTO gallery_changes (added, removed) VALUES ($1::bigint[], "
              "$2::bigint[])",
              pg::Params().Text(IdArray(added)).Text(IdArray(change.removed_embedding_ids)))
          .status());
  return absl::OkStatus();
}

const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

// The position every follower starts from and ChangeLogPosition returns: the last change, or
// the last one pruned when the log is empty after a prune.
constexpr char kPositionNow[] =
    "SELECT greatest((SELECT coalesce(max(seq), 0) FROM gallery_changes), "
    "(SELECT value::bigint FROM fedface_gallery_meta WHERE key = 'changes_pruned_through'))";

bool IsRetryable(const absl::Status& s) {
  const std::string state = pg::SqlState(s);
  return state == "40001" || state == "40P01" || state == "23505";
}

}  // namespace

absl::StatusOr<std::unique_ptr<GalleryStore>> PostgresqlGalleryStore::Open(
    const std::string& conninfo, bool must_exist, Options options) {
  const std::string location = absl::StrCat("postgresql gallery (", conninfo, ")");
  ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> db, pg::Connection::Open(conninfo, location));
  RETURN_IF_ERROR(EnsureSchema(*db, must_exist));
  return std::unique_ptr<GalleryStore>(
      new PostgresqlGalleryStore(location, std::move(db), options));
}

template <typename Fn>
auto PostgresqlGalleryStore::Reconnecting(const Fn& fn) const -> decltype(fn()) {
  const absl::Time give_up = absl::Now() + options_.reconnect_within;
  absl::Duration pause = kFirstReconnectPause;
  bool lost = false;
  while (true) {
    auto result = fn();
    const absl::Status& status = StatusOf(result);
    if (!absl::IsUnavailable(status) || options_.reconnect_within <= absl::ZeroDuration()) {
      if (lost && status.ok()) std::cerr << location() << ": reconnected" << std::endl;
      return result;
    }
    if (absl::Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(status.message(),
                                                 " (gave up after reconnecting for ",
                                                 absl::FormatDuration(options_.reconnect_within),
                                                 ", gallery.postgresql.reconnect_timeout_s)"));
    }
    if (!lost) {
      // One line: libpq's messages run over several.
      std::cerr << absl::StrReplaceAll(status.message(), {{"\n\t", " "}, {"\n", " "}})
                << ": reconnecting for up to " << absl::FormatDuration(options_.reconnect_within)
                << " (gallery.postgresql.reconnect_timeout_s)" << std::endl;
      lost = true;
    }
    absl::SleepFor(std::min(pause, give_up - absl::Now()));
    pause = std::min(pause * 2, kLongestReconnectPause);
  }
}

absl::StatusOr<GalleryChange> PostgresqlGalleryStore::CommitBatch(
    const std::vector<ImageOutcome>& batch) {
  RETURN_IF_ERROR(CheckBatch(batch));
  absl::StatusOr<GalleryChange> change = Reconnecting([&] {
    std::lock_guard<std::mutex> lock(mu_);
    absl::StatusOr<GalleryChange> once;
    // Another host committing the same subject or path at once can make this transaction lose a
    // race (unique key, deadlock); it rolled back whole, so running it again is safe.
    for (int attempt = 0; attempt < kCommitAttempts; ++attempt) {
      once = CommitOnce(batch);
      if (once.ok() || !IsRetryable(once.status())) break;
    }
    return once;
  });
  if (!change.ok()) return change.status();
  DropAddedAndRemoved(*change);
  return change;
}

absl::StatusOr<GalleryChange> PostgresqlGalleryStore::CommitOnce(
    const std::vector<ImageOutcome>& batch) {
  static const std::string host = HostName();
  ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(
      auto batch_row,
      db_->Exec("INSERT INTO enrolment_batches (host, images) VALUES ($1, $2) RETURNING id",
                pg::Params().Text(host).Int(static_cast<int64_t>(batch.size()))));
  const int64_t batch_id = batch_row.Int(0, 0);

  GalleryChange change;
  for (const ImageOutcome& o : batch) {
    ASSIGN_OR_RETURN(
        auto added,
        db_->Exec("INSERT INTO subjects (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                  pg::Params().Text(o.subject)));
    ASSIGN_OR_RETURN(auto sid_row, db_->Exec("SELECT id FROM subjects WHERE name = $1",
                                             pg::Params().Text(o.subject)));
    if (sid_row.rows() != 1) {
      return absl::InternalError(absl::StrCat(location(), ": subject vanished mid-batch"));
    }
    const int64_t sid = sid_row.Int(0, 0);

    // The previous version of this image, if any, goes with its embeddings (cascade); the
    // statement's snapshot still shows them, so their ids come back in the same round trip.
    ASSIGN_OR_RETURN(
        pg::Result removed,
        o.relative_path
            ? db_->Exec("WITH gone AS (DELETE FROM images WHERE relative_path = $1 RETURNING id) "
                        "SELECT e.id FROM embeddings e JOIN gone ON e.image_id = gone.id",
                        pg::Params().Text(*o.relative_path))
            : db_->Exec("WITH gone AS (DELETE FROM images WHERE relative_path IS NULL AND "
                        "subject_id = $1 AND content_sha256 = $2 RETURNING id) "
                        "SELECT e.id FROM embeddings e JOIN gone ON e.image_id = gone.id",
                        pg::Params().Int(sid).Text(o.content_sha256)));
    for (int64_t id : Ids(removed)) change.removed_embedding_ids.push_back(id);
    if (o.relative_path) {
      // Done: out of the shared pool in the same transaction, so never redone by another host.
      RETURN_IF_ERROR(db_->Exec("DELETE FROM enrolment_pool WHERE relative_path = $1",
                                pg::Params().Text(*o.relative_path))
                          .status());
    }

    ASSIGN_OR_RETURN(
        auto image_row,
        db_->Exec(
            "INSERT INTO images (subject_id, content_sha256, relative_path, status, "
            "failure_reason, "
            "model_version, batch_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            pg::Params()
                .Int(sid)
                .Text(o.content_sha256)
                .OptionalText(o.relative_path)
                .Text(o.failure_reason ? "failed" : "enrolled")
                .Text(o.failure_reason ? std::string_view(*o.failure_reason) : std::string_view())
                .Text(o.model_version)
                .Int(batch_id)));
    const int64_t image_id = image_row.Int(0, 0);

    for (size_t f = 0; f < o.faces.size(); ++f) {
      ASSIGN_OR_RETURN(
          auto row,
          db_->Exec("INSERT INTO embeddings (image_id, face_index, model_version, vector) "
                    "VALUES ($1, $2, $3, $4) RETURNING id",
                    pg::Params()
                        .Int(image_id)
                        .Int(static_cast<int64_t>(f))
                        .Text(o.model_version)
                        .Bytes(o.faces[f].data(), kEmbeddingBytes)));
      change.added.push_back(AddedEmbedding(row.Int(0, 0), image_id, sid, o, f));
    }
  }
  RETURN_IF_ERROR(LogChange(*db_, change));
  RETURN_IF_ERROR(tx->Commit());
  return change;
}

absl::StatusOr<bool> PostgresqlGalleryStore::IsCurrentFile(std::string_view relative_path,
                                                           std::string_view content_sha256,
                                                           std::string_view model_version) const {
  return Reconnecting([&]() -> absl::StatusOr<bool> {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(
        auto r,
        db_->Exec("SELECT 1 FROM images WHERE relative_path = $1 AND content_sha256 = $2 AND "
                  "model_version = $3",
                  pg::Params().Text(relative_path).Text(content_sha256).Text(model_version)));
    return r.rows() > 0;
  });
}

absl::StatusOr<std::vector<std::string>> PostgresqlGalleryStore::FilePaths() const {
  return Reconnecting([&]() -> absl::StatusOr<std::vector<std::string>> {
    std::lock_guard<std::mutex> lock(mu_);
    // COLLATE "C": byte order, as SQLite sorts.
    ASSIGN_OR_RETURN(auto r,
                     db_->Exec("SELECT relative_path FROM images WHERE relative_path IS NOT NULL "
                               "ORDER BY relative_path COLLATE \"C\""));
    std::vector<std::string> out;
    for (int row = 0; row < r.rows(); ++row) out.push_back(r.Text(row, 0));
    return out;
  });
}

absl::StatusOr<GalleryChange> PostgresqlGalleryStore::RemoveFiles(
    const std::vector<std::string>& relative_paths) {
  return Reconnecting([&]() -> absl::StatusOr<GalleryChange> {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(*db_));
    GalleryChange change;
    for (const std::string& p : relative_paths) {
      ASSIGN_OR_RETURN(
          auto removed,
          db_->Exec("WITH gone AS (DELETE FROM images WHERE relative_path = $1 RETURNING id) "
                    "SELECT e.id FROM embeddings e JOIN gone ON e.image_id = gone.id",
                    pg::Params().Text(p)));
      for (int64_t id : Ids(removed)) change.removed_embedding_ids.push_back(id);
    }
    RETURN_IF_ERROR(LogChange(*db_, change));
    RETURN_IF_ERROR(tx->Commit());
    return change;
  });
}

absl::StatusOr<std::vector<ImageRecord>> PostgresqlGalleryStore::ImagesWhere(
    std::string_view where_and_order, const pg::Params& params) const {
  return Reconnecting([&]() -> absl::StatusOr<std::vector<ImageRecord>> {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto r,
                     db_->Exec(absl::StrCat(kImageColumns, std::string(where_and_order)), params));
    std::vector<ImageRecord> out;
    for (int row = 0; row < r.rows(); ++row) out.push_back(ReadImage(r, row));
    return out;
  });
}

absl::StatusOr<std::vector<ImageRecord>> PostgresqlGalleryStore::StaleImages(
    std::string_view model_version) const {
  return ImagesWhere("WHERE i.model_version != $1 ORDER BY i.id", pg::Params().Text(model_version));
}

absl::StatusOr<std::vector<ImageRecord>> PostgresqlGalleryStore::Failures(
    std::string_view model_version) const {
  return ImagesWhere(
      "WHERE i.status = 'failed' AND i.model_version = $1 "
      "ORDER BY s.name COLLATE \"C\", i.relative_path COLLATE \"C\" NULLS FIRST, i.id",
      pg::Params().Text(model_version));
}

absl::StatusOr<std::vector<ImageRecord>> PostgresqlGalleryStore::Images() const {
  return ImagesWhere("ORDER BY i.id", pg::Params());
}

absl::Status PostgresqlGalleryStore::WalkEmbeddings(
    std::string_view where_and_order, const pg::Params& params,
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Stream(absl::StrCat(kEmbeddingColumns, std::string(where_and_order)), params,
                     [&fn](const pg::Result& r) { return fn(ReadEmbedding(r, 0)); });
}

absl::Status PostgresqlGalleryStore::ForEachEmbedding(
    std::string_view model_version,
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  return WalkEmbeddings(
      "WHERE e.model_version = $1 ORDER BY s.name COLLATE \"C\", e.image_id, e.face_index",
      pg::Params().Text(model_version), fn);
}

absl::Status PostgresqlGalleryStore::ForEachStoredEmbedding(
    const std::function<absl::Status(const StoredEmbedding&)>& fn) const {
  return WalkEmbeddings("ORDER BY e.id", pg::Params(), fn);
}

absl::StatusOr<std::vector<StoredEmbedding>> PostgresqlGalleryStore::SubjectEmbeddings(
    std::string_view subject, std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto r, db_->Exec(absl::StrCat(kEmbeddingColumns,
                                                  "WHERE s.name = $1 AND e.model_version = $2 "
                                                  "ORDER BY e.image_id, e.face_index"),
                                     pg::Params().Text(subject).Text(model_version)));
  std::vector<StoredEmbedding> out;
  for (int row = 0; row < r.rows(); ++row) out.push_back(ReadEmbedding(r, row));
  return out;
}

absl::StatusOr<std::vector<SubjectRecord>> PostgresqlGalleryStore::Subjects() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto r,
      db_->Exec("SELECT s.id, s.name, (SELECT count(*) FROM images i WHERE i.subject_id = s.id AND "
                "i.status = 'enrolled') FROM subjects s ORDER BY s.name COLLATE \"C\""));
  std::vector<SubjectRecord> out;
  for (int row = 0; row < r.rows(); ++row) {
    out.push_back(SubjectRecord{r.Int(row, 0), r.Text(row, 1), r.Int(row, 2)});
  }
  return out;
}

absl::StatusOr<GalleryChange> PostgresqlGalleryStore::DeleteSubject(std::string_view subject) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(*db_));
  ASSIGN_OR_RETURN(
      auto ids,
      db_->Exec(
          "SELECT e.id FROM embeddings e JOIN images i ON i.id = e.image_id "
          "JOIN subjects s ON s.id = i.subject_id WHERE s.name = $1 ORDER BY e.id FOR UPDATE OF e",
          pg::Params().Text(subject)));
  GalleryChange change;
  change.removed_embedding_ids = Ids(ids);
  ASSIGN_OR_RETURN(auto del, db_->Exec("DELETE FROM subjects WHERE name = $1 RETURNING id",
                                       pg::Params().Text(subject)));
  if (del.rows() == 0) {
    return absl::NotFoundError(
        absl::StrCat(location(), ": no subject '", std::string(subject), "'"));
  }
  RETURN_IF_ERROR(LogChange(*db_, change));
  RETURN_IF_ERROR(tx->Commit());
  return change;
}

absl::StatusOr<int64_t> PostgresqlGalleryStore::PositionNow() const {
  ASSIGN_OR_RETURN(auto r, db_->Exec(absl::StrCat(kPositionNow, "::bigint")));
  return r.Int(0, 0);
}

absl::StatusOr<int64_t> PostgresqlGalleryStore::ChangeLogPosition() const {
  std::lock_guard<std::mutex> lock(mu_);
  return PositionNow();
}

absl::StatusOr<int64_t> PostgresqlGalleryStore::StartFollowing(std::string_view follower) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(*db_));
  RETURN_IF_ERROR(
      db_->Exec("SELECT pg_advisory_xact_lock($1)", pg::Params().Int(kPruneLockKey)).status());
  ASSIGN_OR_RETURN(int64_t position, PositionNow());
  RETURN_IF_ERROR(db_->Exec("INSERT INTO gallery_followers (follower, position) VALUES ($1, $2) "
                            "ON CONFLICT (follower) DO UPDATE SET position = EXCLUDED.position, "
                            "seen_at = now()",
                            pg::Params().Text(follower).Int(position))
                      .status());
  RETURN_IF_ERROR(tx->Commit());
  return position;
}

absl::Status PostgresqlGalleryStore::RecordFollower(std::string_view follower, int64_t position) {
  std::lock_guard<std::mutex> lock(mu_);
  // An upsert: a follower forgotten while silent is known again (at the position it has; its
  // next ChangesAfter says whether that was pruned).
  return db_
      ->Exec(
          "INSERT INTO gallery_followers (follower, position) VALUES ($1, $2) "
          "ON CONFLICT (follower) DO UPDATE SET position = EXCLUDED.position, seen_at = now()",
          pg::Params().Text(follower).Int(position))
      .status();
}

absl::Status PostgresqlGalleryStore::ForgetFollower(std::string_view follower) {
  std::lock_guard<std::mutex> lock(mu_);
  return db_->Exec("DELETE FROM gallery_followers WHERE follower = $1", pg::Params().Text(follower))
      .status();
}

absl::StatusOr<ChangeLogPrune> PostgresqlGalleryStore::PruneChanges() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, pg::Transaction::Begin(*db_));
  RETURN_IF_ERROR(
      db_->Exec("SELECT pg_advisory_xact_lock($1)", pg::Params().Int(kPruneLockKey)).status());
  ChangeLogPrune prune;
  const pg::Params retention =
      pg::Params().Int(absl::ToInt64Milliseconds(options_.change_log_retention));
  ASSIGN_OR_RETURN(auto dropped,
                   db_->Exec("DELETE FROM gallery_followers WHERE seen_at < now() - $1 * "
                             "interval '1 millisecond' RETURNING 1",
                             retention));
  prune.followers_dropped = dropped.rows();
  // Up to the lowest live position; with no follower, the whole log (a follower that starts
  // later reads the store itself, then the log from its end). Rows still uncommitted are above
  // max(seq): writers take their sequence numbers in commit order (kChangeLogLockKey).
  ASSIGN_OR_RETURN(auto horizon,
                   db_->Exec(absl::StrCat(
                       "SELECT least((SELECT min(position) FROM gallery_followers), (",
                       kPositionNow, "))::bigint, (SELECT count(*) FROM gallery_followers)")));
  prune.pruned_through = horizon.Int(0, 0);
  prune.live_followers = horizon.Int(0, 1);
  ASSIGN_OR_RETURN(auto deleted,
                   db_->Exec("DELETE FROM gallery_changes WHERE seq <= $1 RETURNING 1",
                             pg::Params().Int(prune.pruned_through)));
  prune.rows_deleted = deleted.rows();
  RETURN_IF_ERROR(db_->Exec("UPDATE fedface_gallery_meta SET value = greatest(value::bigint, "
                            "$1)::text WHERE key = 'changes_pruned_through'",
                            pg::Params().Int(prune.pruned_through))
                      .status());
  RETURN_IF_ERROR(tx->Commit());
  return prune;
}

// Read after the rows (each statement sees what committed before it): a prune that deleted rows
// this read needed committed before this check, so it shows here.
absl::Status PostgresqlGalleryStore::CheckNotPruned(int64_t position) const {
  ASSIGN_OR_RETURN(auto pruned, db_->Exec("SELECT value::bigint FROM fedface_gallery_meta WHERE "
                                          "key = 'changes_pruned_through'"));
  const int64_t through = pruned.rows() > 0 ? pruned.Int(0, 0) : 0;
  if (through <= position) return absl::OkStatus();
  return absl::OutOfRangeError(
      absl::StrCat(location(), ": the change log was pruned through ", through,
                   ", past this follower's position ", position,
                   " (silent longer than gallery.postgresql.change_log_retention_s)"));
}

absl::StatusOr<GalleryFeed> PostgresqlGalleryStore::ChangesAfter(int64_t position) const {
  std::lock_guard<std::mutex> lock(mu_);
  GalleryFeed feed;
  ASSIGN_OR_RETURN(auto last,
                   db_->Exec("SELECT coalesce(max(seq), $1)::bigint FROM (SELECT seq FROM "
                             "gallery_changes WHERE seq > $1 ORDER BY seq LIMIT $2) c",
                             pg::Params().Int(position).Int(kChangesPerRead)));
  feed.position = last.Int(0, 0);
  if (feed.position == position) {
    RETURN_IF_ERROR(CheckNotPruned(position));
    return feed;
  }
  const pg::Params range = pg::Params().Int(position).Int(feed.position);
  ASSIGN_OR_RETURN(auto removed, db_->Exec("SELECT unnest(removed)::bigint FROM gallery_changes "
                                           "WHERE seq > $1 AND seq <= $2",
                                           range));
  feed.change.removed_embedding_ids = Ids(removed);
  // What is still there of what was added: an embedding removed since is in a later row's
  // `removed`, which the next read applies.
  ASSIGN_OR_RETURN(auto added,
                   db_->Exec(absl::StrCat(kEmbeddingColumns,
                                          "WHERE e.id IN (SELECT unnest(added) FROM "
                                          "gallery_changes WHERE seq > $1 AND seq <= $2) "
                                          "ORDER BY e.id"),
                             range));
  for (int row = 0; row < added.rows(); ++row) {
    feed.change.added.push_back(ReadEmbedding(added, row));
  }
  RETURN_IF_ERROR(CheckNotPruned(position));
  return feed;
}

absl::StatusOr<GalleryCounts> PostgresqlGalleryStore::Counts(std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto r,
      db_->Exec("SELECT (SELECT count(*) FROM subjects), "
                "(SELECT count(*) FROM images WHERE model_version = $1 AND status = 'enrolled'), "
                "(SELECT count(*) FROM images WHERE model_version = $1 AND status = 'failed'), "
                "(SELECT count(*) FROM embeddings WHERE model_version = $1), "
                "(SELECT count(*) FROM images WHERE model_version != $1)",
                pg::Params().Text(model_version)));
  GalleryCounts c;
  c.subjects = r.Int(0, 0);
  c.enrolled_images = r.Int(0, 1);
  c.failed_images = r.Int(0, 2);
  c.embeddings = r.Int(0, 3);
  c.stale_images = r.Int(0, 4);
  return c;
}

absl::Status PostgresqlGalleryStore::Offer(const std::vector<PoolFile>& files,
                                           std::string_view model_version) {
  return Reconnecting([&]() -> absl::Status {
    std::lock_guard<std::mutex> lock(mu_);
    // Arrays of up to 1000 files per statement; a file already current (another host committed it
    // since this host looked) is not offered again.
    for (size_t begin = 0; begin < files.size(); begin += 1000) {
      const size_t end = std::min(files.size(), begin + 1000);
      std::string paths = "{", hashes = "{";
      for (size_t i = begin; i < end; ++i) {
        auto quoted = [](const std::string& s) {
          std::string q = "\"";
          for (char c : s) {
            if (c == '"' || c == '\\') q.push_back('\\');
            q.push_back(c);
          }
          return q + "\"";
        };
        absl::StrAppend(&paths, i > begin ? "," : "", quoted(files[i].relative_path));
        absl::StrAppend(&hashes, i > begin ? "," : "", quoted(files[i].content_sha256));
      }
      paths += "}";
      hashes += "}";
      ASSIGN_OR_RETURN(
          auto offered,
          db_->Exec(
              "INSERT INTO enrolment_pool (relative_path, model_version, content_sha256) "
              "SELECT f.path, $3, f.sha FROM unnest($1::text[], $2::text[]) AS f(path, sha) "
              "WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.relative_path = f.path AND "
              "i.content_sha256 = f.sha AND i.model_version = $3) "
              // A row left by another model version or older content is this offer's now.
              "ON CONFLICT (relative_path) DO UPDATE SET model_version = EXCLUDED.model_version, "
              "content_sha256 = EXCLUDED.content_sha256, host = NULL, lease_until = NULL "
              "WHERE enrolment_pool.model_version <> EXCLUDED.model_version OR "
              "enrolment_pool.content_sha256 <> EXCLUDED.content_sha256",
              pg::Params().Text(paths).Text(hashes).Text(model_version)));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<PoolFile>> PostgresqlGalleryStore::Claim(std::string_view model_version,
                                                                    int limit,
                                                                    absl::Duration lease) {
  return Reconnecting([&]() -> absl::StatusOr<std::vector<PoolFile>> {
    static const std::string host = HostName();
    std::lock_guard<std::mutex> lock(mu_);
    // SKIP LOCKED: hosts claiming at once take disjoint files without waiting on each other.
    ASSIGN_OR_RETURN(
        auto claimed,
        db_->Exec(
            "UPDATE enrolment_pool p SET host = $1, "
            "lease_until = clock_timestamp() + $2 * interval '1 millisecond' "
            "WHERE p.relative_path IN (SELECT relative_path FROM enrolment_pool "
            "WHERE model_version = $3 AND (lease_until IS NULL OR lease_until < clock_timestamp()) "
            "ORDER BY relative_path LIMIT $4 FOR UPDATE SKIP LOCKED) "
            "RETURNING p.relative_path, p.content_sha256",
            pg::Params()
                .Text(host)
                .Int(absl::ToInt64Milliseconds(lease))
                .Text(model_version)
                .Int(limit)));
    std::vector<PoolFile> out;
    for (int row = 0; row < claimed.rows(); ++row) {
      out.push_back({claimed.Text(row, 0), claimed.Text(row, 1)});
    }
    return out;
  });
}

absl::StatusOr<int64_t> PostgresqlGalleryStore::Renew(std::string_view model_version,
                                                      absl::Duration lease) {
  return Reconnecting([&]() -> absl::StatusOr<int64_t> {
    static const std::string host = HostName();
    std::lock_guard<std::mutex> lock(mu_);
    // Only files still this host's: one another host took after an expiry is not taken back.
    ASSIGN_OR_RETURN(
        auto renewed,
        db_->Exec(
            "UPDATE enrolment_pool SET lease_until = clock_timestamp() + $2 * "
            "interval '1 millisecond' WHERE host = $1 AND model_version = $3 RETURNING 1",
            pg::Params().Text(host).Int(absl::ToInt64Milliseconds(lease)).Text(model_version)));
    return static_cast<int64_t>(renewed.rows());
  });
}

absl::StatusOr<int64_t> PostgresqlGalleryStore::Remaining(std::string_view model_version) const {
  return Reconnecting([&]() -> absl::StatusOr<int64_t> {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto r,
                     db_->Exec("SELECT count(*) FROM enrolment_pool WHERE model_version = $1",
                               pg::Params().Text(model_version)));
    return r.Int(0, 0);
  });
}

absl::StatusOr<PoolStatus> PostgresqlGalleryStore::Status(std::string_view model_version) const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto pool,
      db_->Exec(
          "SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until < clock_timestamp()), "
          "count(*) FILTER (WHERE lease_until >= clock_timestamp()) FROM enrolment_pool "
          "WHERE model_version = $1",
          pg::Params().Text(model_version)));
  PoolStatus status;
  status.waiting = pool.Int(0, 0);
  status.claimed = pool.Int(0, 1);
  ASSIGN_OR_RETURN(
      auto hosts,
      db_->Exec("SELECT host, count(*), sum(images)::bigint, "
                "to_char(max(committed_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
                "FROM enrolment_batches GROUP BY host ORDER BY max(committed_at) DESC"));
  for (int row = 0; row < hosts.rows(); ++row) {
    status.hosts.push_back(
        {hosts.Text(row, 0), hosts.Int(row, 1), hosts.Int(row, 2), hosts.Text(row, 3)});
  }
  return status;
}

}  // namespace fedface::partner
