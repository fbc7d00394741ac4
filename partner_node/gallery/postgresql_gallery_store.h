// The PostgreSQL gallery store (gallery.store: postgresql): one gallery shared by several
// enrolment hosts, and read by the serving host, through libpq (a unix socket or TCP; the
// password, if any, from a passfile - never from the configuration).
//
// Schema (version kPostgresqlGallerySchemaVersion, in fedface_gallery_meta):
//   fedface_gallery_meta (key PRIMARY KEY, value): 'application' = 'fedface gallery',
//                        'schema_version' = N
//   subjects          (id bigserial, name UNIQUE)
//   enrolment_batches (id bigserial, host, images, committed_at): one row per committed batch,
//                     the progress every host can see
//   images            (id bigserial, subject_id -> subjects ON DELETE CASCADE, content_sha256,
//                     relative_path UNIQUE (NULL for local-API enrolments, then UNIQUE by
//                     (subject_id, content_sha256)), status, failure_reason, model_version,
//                     batch_id -> enrolment_batches)
//   embeddings        (id bigserial - never reused, image_id -> images ON DELETE CASCADE,
//                     face_index, model_version, vector bytea of 128 float32 in host order
//                     (512 bytes, the SQLite store's bytes exactly), UNIQUE (image_id, face_index))
//   enrolment_pool    (relative_path PRIMARY KEY, model_version, content_sha256, host,
//                     lease_until): files waiting to be embedded by any enrolment host (version 2)
//   gallery_changes   (seq bigserial, added bigint[], removed bigint[], committed_at): one row per
//                     write that changed embeddings, committed in seq order (an advisory lock from
//                     the row to COMMIT): what a serving host follows (version 3)
//   gallery_followers (follower PRIMARY KEY, position, seen_at): what each following process has
//                     applied, refreshed while it lives; fedface_gallery_meta
//                     'changes_pruned_through' = the last change pruned (version 4)
// Opening creates the schema in an empty database (under an advisory lock, so hosts opening a new
// database together create it once), migrates an older version, and refuses a newer one or a
// database that holds other tables of these names.
//
// Pruning (PruneChanges, under an advisory lock that StartFollowing shares, so a follower
// registering and a prune never cross): deletes the change-log rows up to the lowest position of
// the followers seen within the retention, forgets the others; one that comes back after its
// rows went finds ChangesAfter OutOfRange and rebuilds its index.
//
// With reconnect_within > 0 (enrolment hosts), a statement or transaction that lost the server
// runs again, reconnecting with backoff, until it succeeds or that long has passed: a
// transaction that failed rolled back whole, and one whose COMMIT answer was lost is harmless to
// repeat (a batch replaces its files by path; the pool and the claims are keyed by path).
//
// Every CommitBatch is one transaction (READ COMMITTED; retried on a deadlock, a serialisation
// failure or a unique-key race with another host), durable when COMMIT returns
// (synchronous_commit is the server's; fedface requires the default, on).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/postgresql_db.h"

namespace fedface::partner {

inline constexpr int kPostgresqlGallerySchemaVersion = 4;

class PostgresqlGalleryStore final : public GalleryStore, public EnrolmentPool {
 public:
  // GalleryStoreSpec's postgresql_reconnect_within and postgresql_change_log_retention.
  struct Options {
    absl::Duration reconnect_within = absl::ZeroDuration();
    absl::Duration change_log_retention = absl::Hours(24);
  };

  // Connects with `conninfo` (no password in it: see gallery_store_factory.h) and checks,
  // creates or migrates the schema (not when must_exist: an empty database is then NotFound).
  // Errors name the store: Unavailable (server unreachable), PermissionDenied (authentication,
  // privileges), FailedPrecondition (another schema version, not a gallery).
  static absl::StatusOr<std::unique_ptr<GalleryStore>> Open(const std::string& conninfo,
                                                            bool must_exist, Options options);

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
  absl::StatusOr<int64_t> ChangeLogPosition() const override;
  absl::StatusOr<GalleryFeed> ChangesAfter(int64_t position) const override;
  absl::StatusOr<int64_t> StartFollowing(std::string_view follower) override;
  absl::Status RecordFollower(std::string_view follower, int64_t position) override;
  absl::Status ForgetFollower(std::string_view follower) override;
  absl::StatusOr<ChangeLogPrune> PruneChanges() override;
  EnrolmentPool* enrolment_pool() override { return this; }

  absl::Status Offer(const std::vector<PoolFile>& files, std::string_view model_version) override;
  absl::StatusOr<std::vector<PoolFile>> Claim(std::string_view model_version, int limit,
                                              absl::Duration lease) override;
  absl::StatusOr<int64_t> Renew(std::string_view model_version, absl::Duration lease) override;
  absl::StatusOr<int64_t> Remaining(std::string_view model_version) const override;
  absl::StatusOr<PoolStatus> Status(std::string_view model_version) const override;

 private:
  PostgresqlGalleryStore(std::string location, std::unique_ptr<pg::Connection> db, Options options)
      : GalleryStore(std::move(location)), db_(std::move(db)), options_(options) {}

  // Runs fn (which takes mu_ itself) again while it fails Unavailable, for up to
  // options_.reconnect_within.
  template <typename Fn>
  auto Reconnecting(const Fn& fn) const -> decltype(fn());
  absl::StatusOr<GalleryChange> CommitOnce(const std::vector<ImageOutcome>& batch);
  absl::StatusOr<int64_t> PositionNow() const;  // REQUIRES: mu_ held
  // OutOfRange when changes after `position` were pruned. REQUIRES: mu_ held.
  absl::Status CheckNotPruned(int64_t position) const;
  absl::StatusOr<std::vector<ImageRecord>> ImagesWhere(std::string_view where_and_order,
                                                       const pg::Params& params) const;
  absl::Status WalkEmbeddings(std::string_view where_and_order, const pg::Params& params,
                              const std::function<absl::Status(const StoredEmbedding&)>& fn) const;

  const std::unique_ptr<pg::Connection> db_;
  const Options options_;
  mutable std::mutex mu_;  // one connection; statements are serialised
};

}  // namespace fedface::partner
