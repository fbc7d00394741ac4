#include "partner_node/enroll/enroller.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/enroll/gallery_folder.h"

namespace fedface::partner {
namespace {

// Paths per ProcessFiles call: large enough that the idle tail at the end of a chunk is
// negligible, small enough that a store error stops the run soon.
constexpr size_t kChunkFiles = 512;
constexpr absl::Duration kProgressInterval = absl::Milliseconds(100);

struct WorkItem {
  const GalleryFile* file;
  std::string content_sha256;
};

// The reason stored for a failure to enrol, without the path the engine put in front of it
// (the store keeps the relative path beside it).
std::string FailureReason(const ImageAnalysis& analysis, const std::string& path) {
  if (!analysis.status.ok()) {
    std::string message(analysis.status.message());
    if (absl::StartsWith(message, path + ": ")) message.erase(0, path.size() + 2);
    return message.empty() ? "cannot decode the image" : message;
  }
  if (analysis.faces.empty()) return "no face found";
  return "embedding missing for the detected face";
}

// Outcomes flow from the engine's workers to one committer thread.
class BatchCommitter {
 public:
  BatchCommitter(GalleryWriter& writer, const EnrollOptions& options, int64_t total,
                 const std::function<void(const EnrollProgress&)>& progress)
      : writer_(writer), options_(options), progress_(progress), start_(absl::Now()) {
    state_.total = total;
    state_.phase = EnrollPhase::kEmbedding;
    thread_ = std::thread([this] { Run(); });
  }

  // Called from worker threads.
  void Add(ImageOutcome outcome) {
    std::lock_guard<std::mutex> lock(mu_);
    ++state_.done;
    if (outcome.failure_reason) {
      ++state_.failed;
    } else {
      ++enrolled_;
    }
    if (pending_.empty()) first_pending_ = absl::Now();
    pending_.push_back(std::move(outcome));
    if (static_cast<int>(pending_.size()) >= options_.commit_batch_images) cv_.notify_one();
  }

  absl::Status error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

  // Commits every outcome added so far, at once (not after max_commit_delay), and returns the
  // outcomes durably stored by now.
  int64_t Flush() {
    std::unique_lock<std::mutex> lock(mu_);
    flushing_ = true;
    cv_.notify_one();
    settled_.wait(lock, [&] { return pending_.empty() && !committing_; });
    flushing_ = false;
    return state_.committed;
  }

  // Commits what is left, stops the thread and returns the first store error.
  absl::Status Finish(int64_t* enrolled, int64_t* failed, std::vector<double>* commit_ms) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      finishing_ = true;
    }
    cv_.notify_one();
    thread_.join();
    *enrolled = enrolled_;
    *failed = state_.failed;
    commit_ms->insert(commit_ms->end(), commit_ms_.begin(), commit_ms_.end());
    state_.seconds = absl::ToDoubleSeconds(absl::Now() - start_);
    if (progress_) progress_(state_);
    return error_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    absl::Time last_report = absl::InfinitePast();
    while (true) {
      cv_.wait_for(lock, absl::ToChronoMilliseconds(kProgressInterval), [&] {
        return finishing_ || (flushing_ && !pending_.empty()) ||
               static_cast<int>(pending_.size()) >= options_.commit_batch_images;
      });
      const absl::Time now = absl::Now();
      const bool due =
          !pending_.empty() && (finishing_ || flushing_ ||
                                static_cast<int>(pending_.size()) >= options_.commit_batch_images ||
                                now - first_pending_ >= options_.max_commit_delay);
      if (due) {
        const size_t n =
            std::min(pending_.size(), static_cast<size_t>(options_.commit_batch_images));
        std::vector<ImageOutcome> batch(std::make_move_iterator(pending_.begin()),
                                        std::make_move_iterator(pending_.begin() + n));
        pending_.erase(pending_.begin(), pending_.begin() + n);
        if (!pending_.empty()) first_pending_ = now;
        const bool write = error_.ok();
        committing_ = true;
        lock.unlock();
        const absl::Time commit_start = absl::Now();
        absl::Status s = write ? writer_.Commit(batch).status() : absl::OkStatus();
        const double ms = absl::ToDoubleMilliseconds(absl::Now() - commit_start);
        lock.lock();
        committing_ = false;
        if (!s.ok() && error_.ok()) error_ = s;
        if (write && s.ok()) {
          state_.committed += static_cast<int64_t>(n);
          commit_ms_.push_back(ms);
        }
      }
      if (pending_.empty()) settled_.notify_all();
      if (progress_ && now - last_report >= kProgressInterval) {
        last_report = now;
        EnrollProgress snapshot = state_;
        snapshot.seconds = absl::ToDoubleSeconds(now - start_);
        lock.unlock();
        progress_(snapshot);
        lock.lock();
      }
      if (finishing_ && pending_.empty()) return;
    }
  }

  GalleryWriter& writer_;
  const EnrollOptions& options_;
  const std::function<void(const EnrollProgress&)>& progress_;
  const absl::Time start_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable settled_;  // pending_ empty, no commit running (Flush)
  std::vector<ImageOutcome> pending_;
  absl::Time first_pending_;
  bool finishing_ = false;
  bool flushing_ = false;
  bool committing_ = false;
  EnrollProgress state_;
  int64_t enrolled_ = 0;
  std::vector<double> commit_ms_;  // store time of each committed batch
  absl::Status error_;
  std::thread thread_;
};

// Renews a host's claims every third of the lease, from its own thread, until destroyed. A failed
// renewal is not an error: the claims then simply expire, as a dead host's would.
class LeaseRenewer {
 public:
  LeaseRenewer(EnrolmentPool& pool, const std::string& model_version, absl::Duration lease)
      : thread_([this, &pool, model_version, lease] {
          std::unique_lock<std::mutex> lock(mu_);
          while (!cv_.wait_for(lock, absl::ToChronoMilliseconds(lease / 3),
                               [this] { return stop_; })) {
            lock.unlock();
            (void)pool.Renew(model_version, lease);
            lock.lock();
          }
        }) {}
  ~LeaseRenewer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: started after the members it uses
};

}  // namespace

ImageOutcome Enroller::OutcomeOf(const GalleryFile& file, std::string content_sha256,
                                 ImageAnalysis&& analysis) const {
  ImageOutcome outcome;
  outcome.subject = file.subject;
  outcome.content_sha256 = std::move(content_sha256);
  outcome.relative_path = file.relative_path;
  outcome.model_version = model_version_;
  if (analysis.status.ok() && !analysis.faces.empty() &&
      analysis.embeddings.size() == analysis.faces.size()) {
    outcome.faces = std::move(analysis.embeddings);
  } else {
    outcome.failure_reason = FailureReason(analysis, file.path);
  }
  return outcome;
}

absl::Status Enroller::EnrolFromPool(EnrolmentPool& pool, const std::string& root,
                                     const std::vector<PoolFile>& offer,
                                     const EnrollOptions& options,
                                     const std::function<void(const EnrollProgress&)>& progress,
                                     EnrollSummary& summary) {
  summary.processed = 0;  // what this host embeds; other hosts may take some of the offer
  RETURN_IF_ERROR(pool.Offer(offer, model_version_));
  absl::StatusOr<int64_t> remaining = pool.Remaining(model_version_);
  if (!remaining.ok()) return remaining.status();
  if (*remaining == 0) return absl::OkStatus();

  BatchCommitter committer(writer_, options, *remaining, progress);
  // Keeps this host's claims alive while it works (a third of the lease between renewals), so a
  // batch slower than the lease is not taken by another host; a killed host renews nothing.
  LeaseRenewer renewer(pool, model_version_, options.claim_lease);
  ProcessOptions process;
  process.largest_face_only = true;
  process.embed = true;
  int64_t processed = 0;
  while (committer.error().ok()) {
    absl::StatusOr<std::vector<PoolFile>> claimed =
        pool.Claim(model_version_, options.commit_batch_images, options.claim_lease);
    if (!claimed.ok()) {
      (void)committer.Finish(&summary.enrolled, &summary.failed, &summary.commit_ms);
      return claimed.status();
    }
    if (claimed->empty()) {
      // Other hosts hold the rest: wait for them to commit, or for a dead host's lease to end.
      remaining = pool.Remaining(model_version_);
      if (!remaining.ok() || *remaining == 0) break;
      absl::SleepFor(absl::Milliseconds(250));
      continue;
    }
    if (options.after_claim) {
      options.after_claim(committer.Flush(), static_cast<int64_t>(claimed->size()));
    }
    // The files as this host sees them under the shared folder.
    std::vector<GalleryFile> files;
    std::vector<std::string> paths;
    for (const PoolFile& f : *claimed) {
      GalleryFile file;
      file.relative_path = f.relative_path;
      file.subject = f.relative_path.substr(0, f.relative_path.find('/'));
      file.path = root + "/" + f.relative_path;
      paths.push_back(file.path);
      files.push_back(std::move(file));
    }
    engine_.ProcessFiles(paths, process, [&](size_t i, ImageAnalysis&& analysis) {
      committer.Add(OutcomeOf(files[i], (*claimed)[i].content_sha256, std::move(analysis)));
    });
    processed += static_cast<int64_t>(files.size());
  }
  summary.processed = processed;
  absl::Status status = committer.Finish(&summary.enrolled, &summary.failed, &summary.commit_ms);
  if (!status.ok()) return status;
  return remaining.status();
}

double EnrollSummary::ImagesPerSecond() const {
  return processed > 0 && embed_seconds > 0 ? static_cast<double>(processed) / embed_seconds : 0;
}

Enroller::Enroller(FaceEngine& engine, GalleryWriter& writer, std::string model_version)
    : engine_(engine), writer_(writer), model_version_(std::move(model_version)) {}

absl::StatusOr<EnrollSummary> Enroller::EnrollFolder(
    const std::string& root, const EnrollOptions& options,
    const std::function<void(const EnrollProgress&)>& progress) {
  if (options.commit_batch_images < 1) {
    return absl::InvalidArgumentError("commit_batch_images must be at least 1");
  }
  const absl::Time run_start = absl::Now();
  EnrollSummary summary;
  summary.model_version = model_version_;
  ASSIGN_OR_RETURN(GalleryFolder folder, ListGalleryFolder(root));
  summary.files = static_cast<int64_t>(folder.files.size());
  summary.problems = folder.skipped;

  GalleryStore& store = writer_.store();
  ASSIGN_OR_RETURN(std::vector<std::string> known, store.FilePaths());
  ASSIGN_OR_RETURN(std::vector<ImageRecord> stale, store.StaleImages(model_version_));
  std::unordered_set<std::string> stale_paths;
  for (const ImageRecord& r : stale) {
    if (r.relative_path) {
      stale_paths.insert(*r.relative_path);
    } else {
      ++summary.stale_uploads;
    }
  }
  std::unordered_set<std::string> failed_paths;
  if (options.retry_failures) {
    ASSIGN_OR_RETURN(std::vector<ImageRecord> failures, store.Failures(model_version_));
    for (const ImageRecord& r : failures) {
      if (r.relative_path) failed_paths.insert(*r.relative_path);
    }
  }

  // Files gone from the folder. A subject folder that could not be listed hides its files; they
  // are not gone. An empty listing against a non-empty store is far more likely an unmounted or
  // wrong folder than a wish to remove everything, so it is refused.
  if (folder.files.empty() && !known.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        folder.root, ": no image files, but the store holds ", known.size(),
        " enrolled from a gallery folder; refusing to remove them all (is this the right folder? "
        "to start over, remove ",
        store.location(), ")"));
  }
  std::unordered_set<std::string> present;
  for (const GalleryFile& f : folder.files) present.insert(f.relative_path);
  std::unordered_set<std::string> unlisted(folder.unlisted_subjects.begin(),
                                           folder.unlisted_subjects.end());
  std::vector<std::string> gone;
  for (const std::string& p : known) {
    const std::string subject = p.substr(0, p.find('/'));
    if (!present.count(p) && !unlisted.count(subject)) gone.push_back(p);
  }
  if (!gone.empty()) {
    ASSIGN_OR_RETURN(GalleryChange removed, writer_.RemoveFiles(gone));
    summary.removed = static_cast<int64_t>(gone.size());
  }
  const std::unordered_set<std::string> known_paths(known.begin(), known.end());

  // Step 1 and 3: hash and classify.
  std::vector<WorkItem> work;
  EnrollProgress checking;
  checking.phase = EnrollPhase::kChecking;
  checking.total = summary.files;
  absl::Time last_report = absl::InfinitePast();
  for (const GalleryFile& file : folder.files) {
    ++checking.done;
    if (progress && absl::Now() - last_report >= kProgressInterval) {
      last_report = absl::Now();
      checking.seconds = absl::ToDoubleSeconds(last_report - run_start);
      progress(checking);
    }
    absl::StatusOr<std::string> sha = Sha256HexOfFile(file.path);
    if (!sha.ok()) {
      ++summary.unreadable;
      summary.problems.push_back(
          absl::StrCat(file.relative_path, ": cannot read: ", sha.status().message()));
      continue;
    }
    ASSIGN_OR_RETURN(bool current, store.IsCurrentFile(file.relative_path, *sha, model_version_));
    const bool retry = current && failed_paths.count(file.relative_path) > 0;
    if (current && !retry) {
      ++summary.unchanged;
      continue;
    }
    if (retry) {
      ++summary.changed_files;
    } else if (stale_paths.count(file.relative_path)) {
      ++summary.reembedded;
    } else if (known_paths.count(file.relative_path)) {
      ++summary.changed_files;
    } else {
      ++summary.new_files;
    }
    work.push_back({&file, std::move(*sha)});
  }
  if (progress) {
    checking.seconds = absl::ToDoubleSeconds(absl::Now() - run_start);
    progress(checking);
  }
  summary.processed = static_cast<int64_t>(work.size());
  if (!work.empty() && options.before_embedding) {
    RETURN_IF_ERROR(options.before_embedding(summary.processed));
  }

  // Step 3 and 4: embed on all workers, commit in batches.
  const absl::Time embed_start = absl::Now();
  absl::Status status;
  if (EnrolmentPool* pool = store.enrolment_pool(); pool != nullptr) {
    std::vector<PoolFile> offer;
    offer.reserve(work.size());
    for (const WorkItem& item : work) {
      offer.push_back({item.file->relative_path, item.content_sha256});
    }
    status = EnrolFromPool(*pool, folder.root, offer, options, progress, summary);
  } else if (!work.empty()) {
    BatchCommitter committer(writer_, options, summary.processed, progress);
    ProcessOptions process;
    process.largest_face_only = true;
    process.embed = true;
    for (size_t begin = 0; begin < work.size() && committer.error().ok(); begin += kChunkFiles) {
      const size_t end = std::min(work.size(), begin + kChunkFiles);
      std::vector<std::string> paths;
      paths.reserve(end - begin);
      for (size_t i = begin; i < end; ++i) paths.push_back(work[i].file->path);
      engine_.ProcessFiles(paths, process, [&](size_t i, ImageAnalysis&& analysis) {
        const WorkItem& item = work[begin + i];
        committer.Add(OutcomeOf(*item.file, item.content_sha256, std::move(analysis)));
      });
    }
    status = committer.Finish(&summary.enrolled, &summary.failed, &summary.commit_ms);
  }
  summary.embed_seconds = absl::ToDoubleSeconds(absl::Now() - embed_start);
  summary.seconds = absl::ToDoubleSeconds(absl::Now() - run_start);
  if (!status.ok()) return status;
  return summary;
}

}  // namespace fedface::partner
