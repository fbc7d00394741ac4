// The gallery store: the partner's enrolled subjects, image content hashes, failures to enrol and
// face embeddings. An interface with two implementations chosen by `gallery.store`
// (gallery_store_factory.h): the embedded SQLite store (sqlite_gallery_store.h, the default) and a
// PostgreSQL store shared by many enrolment hosts (postgresql_gallery_store.h). It is local only:
// nothing read from it may cross the boundary except through the egress guard's aggregates.
//
// The data, whatever the store: subjects (unique names); images (subject, content_sha256,
// relative_path unique, or none for local-API enrolments which are instead unique by (subject,
// content_sha256), status enrolled|failed, failure_reason, model_version); embeddings (ids never
// reused, image, face_index, model_version, 128 float32, unique (image, face_index)).
// An image is keyed by its file (relative_path) when it came from the gallery folder, and by its
// content within the subject when it came through the local API; its content hash tells a changed
// file from an unchanged one.
//
// Crash safety: every CommitBatch is one transaction, durable before it returns. A process killed
// at any moment (kill -9) leaves every returned batch intact and no part of an unreturned one;
// re-committing outcomes for the same images (a resumed run) replaces rows, never duplicates them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/embedding.h"

namespace fedface::partner {

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

// What other writers of a shared store changed (GalleryStore::ChangesAfter).
struct GalleryFeed {
  int64_t position = 0;  // pass to the next ChangesAfter
  // Removed embedding ids, and the embeddings added that are still stored (any model version).
  GalleryChange change;
};

// What GalleryStore::PruneChanges did.
struct ChangeLogPrune {
  int64_t rows_deleted = 0;
  int64_t pruned_through = 0;     // every change up to this position is gone
  int64_t live_followers = 0;     // seen within the retention
  int64_t followers_dropped = 0;  // silent longer: they reload when they come back
};

// One file waiting in a shared enrolment pool.
struct PoolFile {
  std::string relative_path;
  std::string content_sha256;
};

// Who is doing what in a shared enrolment (`enroll --status`).
struct PoolStatus {
  int64_t waiting = 0;  // in the pool, unclaimed or with an expired lease
  int64_t claimed = 0;  // under a live lease
  struct Host {
    std::string host;  // "hostname:pid"
    int64_t batches = 0;
    int64_t images = 0;
    std::string last_commit;  // UTC, ISO 8601
  };
  std::vector<Host> hosts;  // committed batches per host, most recent first
};

// The work of one enrolment shared by several hosts through the store (PostgreSQL): each host
// adds the files it finds need embedding, then claims batches of them under a lease
// (SELECT ... FOR UPDATE SKIP LOCKED); CommitBatch removes a committed file from the pool in the
// same transaction, so a committed batch is never redone and an uncommitted one (its host killed)
// returns to the pool when its lease expires.
class EnrolmentPool {
 public:
  virtual ~EnrolmentPool() = default;
  // Adds files to the pool for model_version unless already there or already current in the
  // store; a file in the pool under another model version or content is taken over (unclaimed).
  // Idempotent.
  virtual absl::Status Offer(const std::vector<PoolFile>& files,
                             std::string_view model_version) = 0;
  // Claims up to `limit` unclaimed (or lease-expired) files for this process for `lease`.
  virtual absl::StatusOr<std::vector<PoolFile>> Claim(std::string_view model_version, int limit,
                                                      absl::Duration lease) = 0;
  // Extends to `lease` from now the lease of every file of model_version this process holds, so a
  // batch slower than its lease stays this host's; returns how many. A file another host took
  // after this host's lease ran out stays theirs.
  virtual absl::StatusOr<int64_t> Renew(std::string_view model_version, absl::Duration lease) = 0;
  // Files of model_version still in the pool (claimed or not).
  virtual absl::StatusOr<int64_t> Remaining(std::string_view model_version) const = 0;
  virtual absl::StatusOr<PoolStatus> Status(std::string_view model_version) const = 0;
};

class GalleryStore {
 public:
  // Stores are opened by OpenGalleryStore (gallery_store_factory.h).
  virtual ~GalleryStore() = default;
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
  virtual absl::StatusOr<GalleryChange> CommitBatch(const std::vector<ImageOutcome>& batch) = 0;

  // True when the file at relative_path is recorded with this content under model_version
  // (enrolled or failed): an incremental enrolment skips it. Thread-safe.
  virtual absl::StatusOr<bool> IsCurrentFile(std::string_view relative_path,
                                             std::string_view content_sha256,
                                             std::string_view model_version) const = 0;

  // Relative paths of every image that came from the gallery folder, sorted. Thread-safe.
  virtual absl::StatusOr<std::vector<std::string>> FilePaths() const = 0;

  // Removes the rows of files that are gone from the gallery folder, in one transaction; unknown
  // paths are ignored. Returns the removed embedding ids. Thread-safe.
  virtual absl::StatusOr<GalleryChange> RemoveFiles(
      const std::vector<std::string>& relative_paths) = 0;

  // Images recorded under a model version other than model_version: what a model change makes
  // stale (all of them after a switch). Ordered by id. Thread-safe.
  virtual absl::StatusOr<std::vector<ImageRecord>> StaleImages(
      std::string_view model_version) const = 0;

  // Failures to enrol under model_version, ordered by subject then path (local listing only).
  virtual absl::StatusOr<std::vector<ImageRecord>> Failures(
      std::string_view model_version) const = 0;

  // Calls fn for every embedding made by model_version, ordered by subject name, image id, face
  // index; streams rows so a large gallery need not fit in memory twice. Stops early and returns
  // fn's error when fn returns non-OK. Holds the store's lock for the walk: fn must not call back
  // into this store.
  virtual absl::Status ForEachEmbedding(
      std::string_view model_version,
      const std::function<absl::Status(const StoredEmbedding&)>& fn) const = 0;

  // Convenience: ForEachEmbedding collected into a vector.
  absl::StatusOr<std::vector<StoredEmbedding>> Embeddings(std::string_view model_version) const;

  // Embeddings of one subject under model_version (empty when unknown). Thread-safe.
  virtual absl::StatusOr<std::vector<StoredEmbedding>> SubjectEmbeddings(
      std::string_view subject, std::string_view model_version) const = 0;

  // All subjects ordered by name. Thread-safe.
  virtual absl::StatusOr<std::vector<SubjectRecord>> Subjects() const = 0;

  // Removes the subject with all its images and embeddings in one transaction; returns the removed
  // embedding ids. NotFound when there is no such subject. Thread-safe.
  virtual absl::StatusOr<GalleryChange> DeleteSubject(std::string_view subject) = 0;

  virtual absl::StatusOr<GalleryCounts> Counts(std::string_view model_version) const = 0;

  // Every embedding of every model version, ordered by id: what the traffic audit searches the
  // capture for (partner_node/audit). Same streaming and lock rules as ForEachEmbedding.
  virtual absl::Status ForEachStoredEmbedding(
      const std::function<absl::Status(const StoredEmbedding&)>& fn) const = 0;

  // Every image of every model version, ordered by id (the audit's content digests).
  virtual absl::StatusOr<std::vector<ImageRecord>> Images() const = 0;

  // The change log of a store several processes write (PostgreSQL), so that a serving process's
  // index follows what other hosts enrol: the position of the last change now, then the changes
  // after a position. Take the position BEFORE building an index from the store: applying a
  // change the index already holds is harmless (FaceIndex::Apply replaces an id, ignores an
  // absent one). Unimplemented for a store only one process writes (SQLite). Thread-safe.
  // ChangesAfter a position whose changes were pruned (the follower was silent longer than the
  // retention) is OutOfRange: the follower must rebuild its index from the store.
  virtual absl::StatusOr<int64_t> ChangeLogPosition() const;
  virtual absl::StatusOr<GalleryFeed> ChangesAfter(int64_t position) const;

  // Change-log pruning. A follower registers under a name unique to its process (StartFollowing
  // returns the position to follow from, as ChangeLogPosition does) and records what it has
  // applied at least every quarter of the retention (RecordFollower); PruneChanges deletes the
  // rows every follower seen within the retention has applied, and forgets the others. Forget
  // on a clean exit, so a stopped process holds nothing back. Unimplemented for SQLite.
  virtual absl::StatusOr<int64_t> StartFollowing(std::string_view follower);
  virtual absl::Status RecordFollower(std::string_view follower, int64_t position);
  virtual absl::Status ForgetFollower(std::string_view follower);
  virtual absl::StatusOr<ChangeLogPrune> PruneChanges();

  // The shared enrolment pool, or nullptr for a store that only one host writes (SQLite).
  virtual EnrolmentPool* enrolment_pool() { return nullptr; }

  // Where the store is, for messages: the SQLite file, or "postgresql gallery (<conninfo>)".
  const std::string& location() const { return location_; }

 protected:
  explicit GalleryStore(std::string location) : location_(std::move(location)) {}

  // Checks every outcome of a batch (InvalidArgument naming the item and the store).
  absl::Status CheckBatch(const std::vector<ImageOutcome>& batch) const;

 private:
  const std::string location_;
};

// An image repeated within one batch: its first embeddings were added and removed in the same
// transaction, so they are in neither list as far as an index following the store is concerned.
void DropAddedAndRemoved(GalleryChange& change);

// The embedding row a CommitBatch added for face `face` of outcome `o`.
StoredEmbedding AddedEmbedding(int64_t id, int64_t image_id, int64_t subject_id,
                               const ImageOutcome& o, size_t face);

}  // namespace fedface::partner
