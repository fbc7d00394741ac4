// Incremental enrolment of a gallery folder (ROOT/<subject>/<images>, see gallery_folder.h) into
// the gallery store, for the model version the engine runs.
//
// One run:
//   1. lists the folder and hashes every image file (sha256 of its bytes);
//   2. removes from the store the files that are gone from the folder (one transaction) - but not
//      those of a subject folder that could not be listed, and nothing at all when the folder
//      holds no image file while the store holds some (FailedPrecondition: an unmounted or wrong
//      folder must not wipe the gallery);
//   3. skips every file whose content is already recorded for this model version (enrolled or
//      failed, see GalleryStore::IsCurrentFile); everything else - new files, changed files, and
//      files recorded under another model version - goes through FaceEngine::ProcessFiles on all
//      workers, largest face only;
//   4. commits the outcomes in batches (commit_batch_images per transaction, or whatever is
//      pending after max_commit_delay), from one committer thread so workers never wait on fsync.
// A file that decodes to no face, or does not decode, is recorded as a failure to enrol with its
// reason (GalleryStore::Failures lists them); a file that cannot even be read is not recorded and
// is reported in EnrollSummary::problems.
//
// Crash safety: killed at any moment, every committed batch stays (the store fsyncs each); the
// next run skips those files and redoes only the rest; re-committing a file replaces its row, so
// there are never duplicates. A file changed between hashing and decoding is stored with the
// older hash and is therefore simply redone by the next run.
//
// Several hosts (a store with an EnrolmentPool, PostgreSQL): steps 1-3 run on every host; the
// files to embed are offered to the store's pool and each host then claims batches of
// commit_batch_images under options.claim_lease until the pool is empty, so the hosts share the
// embedding work and each file is committed once (see EnrolmentPool).
//
// Local-API enrolments (no file behind them) cannot be re-embedded from here: after a model
// change they are counted in stale_uploads and must be enrolled again through the API.
//
// Thread safety: EnrollFolder may run while other threads use the same engine and writer (the
// local match API in `partner_node serve`); two EnrollFolder runs over the same folder at once
// waste work but stay correct.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/engine/face_engine.h"
#include "partner_node/enroll/gallery_folder.h"
#include "partner_node/enroll/gallery_writer.h"

namespace fedface::partner {

struct EnrollOptions {
  int commit_batch_images = 32;                        // outcomes per transaction, >= 1
  absl::Duration max_commit_delay = absl::Seconds(2);  // a partial batch waits at most this long
  bool retry_failures = false;  // also redo files whose failure to enrol is current
  // Called once the run knows how many images it will send through the engine (only when > 0),
  // before any is sent: a non-OK status ends the run there and is returned. Files gone from the
  // folder are removed from the store before this point; nothing is embedded after a refusal.
  std::function<absl::Status(int64_t images_to_embed)> before_embedding;
  // With a shared store (GalleryStore::enrolment_pool): how long a claimed batch stays this
  // host's before another host may take it (a killed host's files return to the pool then).
  absl::Duration claim_lease = absl::Seconds(300);
  // Tests only (kill points of a shared enrolment): called after each claim, before its files
  // are embedded, with the outcomes this host has durably committed by then (every earlier
  // outcome is committed first) and the files it now holds under its lease.
  std::function<void(int64_t committed, int64_t claimed)> after_claim;
};

enum class EnrollPhase { kChecking, kEmbedding };

// Reported while a run goes: in kChecking, files hashed of files found; in kEmbedding, images
// processed of images to process.
struct EnrollProgress {
  EnrollPhase phase = EnrollPhase::kChecking;
  int64_t done = 0;
  int64_t total = 0;
  int64_t failed = 0;     // failures to enrol so far (kEmbedding)
  int64_t committed = 0;  // outcomes durably stored so far (kEmbedding)
  double seconds = 0;     // since the phase started
};

struct EnrollSummary {
  std::string model_version;
  int64_t files = 0;          // image files found in the folder
  int64_t unchanged = 0;      // current for model_version: skipped
  int64_t new_files = 0;      // not recorded before
  int64_t changed_files = 0;  // recorded with other content (or, with retry_failures, failed)
  int64_t reembedded = 0;     // recorded under another model version
  int64_t processed = 0;      // new + changed + reembedded: sent through the engine
  int64_t enrolled = 0;       // of processed: a face stored
  int64_t failed = 0;         // of processed: failure to enrol recorded
  int64_t removed = 0;        // files gone from the folder whose rows were removed
  int64_t unreadable = 0;     // could not be read to hash them: not recorded
  int64_t stale_uploads = 0;  // local-API enrolments under another model version
  // Entries that were not enrolled and not recorded, "relative/path: reason" (skipped entries
  // of the folder scan, unreadable files).
  std::vector<std::string> problems;
  double seconds = 0;        // the whole run
  double embed_seconds = 0;  // the engine phase (step 3 and 4)
  // Store time of each batch this run committed (GalleryWriter::Commit, in ms), in order.
  std::vector<double> commit_ms;
  // processed / embed_seconds (0 when nothing was processed).
  double ImagesPerSecond() const;
};

class Enroller {
 public:
  // `engine` must embed (have a network) for `model_version`, the version every outcome is
  // stored under. Both references must outlive the Enroller.
  Enroller(FaceEngine& engine, GalleryWriter& writer, std::string model_version);

  // Runs steps 1-4 over `root`. `progress`, when set, is called from one thread at a time, at
  // most every ~100 ms and at the end of each phase. Fails when the folder cannot be listed or
  // the store cannot be written (batches committed before the error stay committed).
  absl::StatusOr<EnrollSummary> EnrollFolder(
      const std::string& root, const EnrollOptions& options,
      const std::function<void(const EnrollProgress&)>& progress = nullptr);

 private:
  ImageOutcome OutcomeOf(const GalleryFile& file, std::string content_sha256,
                         ImageAnalysis&& analysis) const;
  // Offers the files to the shared pool, then claims and commits batches until it is empty.
  absl::Status EnrolFromPool(EnrolmentPool& pool, const std::string& root,
                             const std::vector<PoolFile>& offer, const EnrollOptions& options,
                             const std::function<void(const EnrollProgress&)>& progress,
                             EnrollSummary& summary);

  FaceEngine& engine_;
  GalleryWriter& writer_;
  const std::string model_version_;
};

}  // namespace fedface::partner
