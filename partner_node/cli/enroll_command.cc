// `partner_node enroll --config FILE [--gallery DIR]`: incremental enrolment of a gallery folder
// into the gallery store with the active model; `--failures` lists the failures to enrol.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/enroll/enroll_config.h"
#include "partner_node/enroll/enroll_progress.h"
#include "partner_node/enroll/enroller.h"
#include "partner_node/enroll/gallery_writer.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_config.h"

namespace fedface::partner {
namespace {

constexpr size_t kProblemsShown = 20;

// Tests only: FEDFACE_TEST_ENROLL_PAUSE_AFTER_IMAGES=N makes a host of a shared enrolment stop,
// holding its claim, once N outcomes are committed, and say so on stderr: the kill point of the
// shared enrolment kill test, reported by the host rather than guessed by polling.
// SIGUSR1 resumes it (once), so a test can change the world (stop the database) at that point.
std::atomic<bool> test_resumed{false};

std::function<void(int64_t, int64_t)> TestPauseAfterClaim() {
  const char* value = std::getenv("FEDFACE_TEST_ENROLL_PAUSE_AFTER_IMAGES");
  if (value == nullptr || *value == '\0') return nullptr;
  const int64_t after = std::atoll(value);
  std::signal(SIGUSR1, [](int) { test_resumed = true; });
  return [after, paused = false](int64_t committed, int64_t claimed) mutable {
    if (committed < after || paused) return;
    paused = true;
    std::cerr << "enroll: test pause: " << committed << " images committed, " << claimed
              << " files claimed" << std::endl;
    // Any thread may take the signal: wait for its flag, not for this thread to be woken.
    while (!test_resumed) ::usleep(1000);
    std::cerr << "enroll: test resume" << std::endl;
  };
}

void PrintEnrollHelp(std::ostream& out) {
  out << "usage: partner_node enroll --config FILE [--gallery DIR] [--retry-failures]\n"
         "       partner_node enroll --config FILE --failures\n"
         "       partner_node enroll --config FILE --status\n\n"
         "Enrols the folder tree DIR/<subject>/<images> (default: gallery.dir) into the gallery\n"
         "store (gallery.db) with the model cache's active model, incrementally: files already\n"
         "recorded with the same content for the active model are skipped; new and changed\n"
         "files are embedded (largest face of each image) on all engine workers and committed\n"
         "in batches; files gone from the folder are removed from the store; after a model\n"
         "change every file is embedded again. Killed at any moment, a run loses nothing it\n"
         "committed and the next run resumes where it stopped.\n\n"
         "  --config FILE     the partner's YAML configuration below (required)\n"
         "  --gallery DIR     the folder to enrol (overrides gallery.dir)\n"
         "  --retry-failures  also retry files that failed to enrol with the same content\n"
         "  --failures        list the failures to enrol of the active model, with reasons\n"
         "  --status          the store's counts and, on a PostgreSQL gallery enrolled by\n"
         "                    several hosts, the shared pool and each host's committed batches\n"
         "  --help            this text\n\n"
         "Progress goes to stderr (a bar on a terminal), the summary line to stdout.\n"
         "Exit codes: 0 done (failures to enrol are counted, not errors), 1 the run failed,\n"
         "2 usage error.\n\n"
      << PartnerConfigSchema().HelpText();
}

int ListFailures(const Config& config) {
  absl::StatusOr<std::string> version = ActiveModelVersion(config);
  if (!version.ok()) {
    std::cerr << "enroll: " << version.status().message() << std::endl;
    return 1;
  }
  if (version->empty()) {
    std::cerr << "enroll: no active model in " << config.GetPath("model_cache.dir")
              << "; run `partner_node models pull`" << std::endl;
    return 1;
  }
  absl::StatusOr<GalleryStoreSpec> spec = GalleryStoreSpecFrom(config, /*must_exist=*/true);
  if (!spec.ok()) {
    std::cerr << "enroll: " << spec.status().message() << std::endl;
    return 1;
  }
  absl::StatusOr<std::unique_ptr<GalleryStore>> store = OpenGalleryStore(*spec);
  if (absl::IsNotFound(store.status())) {
    std::cout << "no gallery store yet (" << store.status().message() << "): 0 failures to enrol"
              << std::endl;
    return 0;
  }
  absl::StatusOr<std::vector<ImageRecord>> failures =
      store.ok() ? (*store)->Failures(*version)
                 : absl::StatusOr<std::vector<ImageRecord>>(store.status());
  if (!failures.ok()) {
    std::cerr << "enroll: " << failures.status().message() << std::endl;
    return 1;
  }
  std::cout << failures->size() << " failures to enrol under model " << *version << "\n";
  for (const ImageRecord& r : *failures) {
    std::cout << r.relative_path.value_or(absl::StrCat(r.subject, "/<local API upload>")) << "\t"
              << r.failure_reason << "\n";
  }
  std::cout.flush();
  return 0;
}

// `enroll --status`: the shared enrolment's progress across hosts (PostgreSQL gallery).
int ShowStatus(const Config& config) {
  auto fail = [](const absl::Status& s) {
    std::cerr << "enroll: " << s.message() << std::endl;
    return 1;
  };
  absl::StatusOr<std::string> version = ActiveModelVersion(config);
  if (!version.ok()) return fail(version.status());
  absl::StatusOr<GalleryStoreSpec> spec = GalleryStoreSpecFrom(config, /*must_exist=*/true);
  if (!spec.ok()) return fail(spec.status());
  absl::StatusOr<std::unique_ptr<GalleryStore>> store = OpenGalleryStore(*spec);
  if (!store.ok()) return fail(store.status());
  absl::StatusOr<GalleryCounts> counts = (*store)->Counts(*version);
  if (!counts.ok()) return fail(counts.status());
  std::cout << "gallery " << (*store)->location() << ", model " << *version << ": "
            << counts->subjects << " subjects, " << counts->enrolled_images << " enrolled, "
            << counts->failed_images << " failed, " << counts->stale_images
            << " under another model\n";
  EnrolmentPool* pool = (*store)->enrolment_pool();
  if (pool == nullptr) {
    std::cout << "single-host store: no shared enrolment pool" << std::endl;
    return 0;
  }
  absl::StatusOr<PoolStatus> status = pool->Status(*version);
  if (!status.ok()) return fail(status.status());
  std::cout << "pool: " << status->waiting << " files waiting, " << status->claimed
            << " claimed under a live lease\n";
  for (const PoolStatus::Host& h : status->hosts) {
    std::cout << "host " << h.host << ": " << h.batches << " batches, " << h.images
              << " images committed, last " << h.last_commit << "\n";
  }
  std::cout.flush();
  return 0;
}

int Enroll(const Config& config, const std::string& config_path, const std::string& gallery,
           bool retry_failures) {
  absl::StatusOr<ActiveModelEngine> model = LoadActiveModelEngine(config);
  if (!model.ok()) {
    std::cerr << "enroll: " << model.status().message() << std::endl;
    return 1;
  }
  absl::StatusOr<GalleryStoreSpec> spec = GalleryStoreSpecFrom(config);
  if (!spec.ok()) {
    std::cerr << "enroll: " << spec.status().message() << std::endl;
    return 1;
  }
  // An enrolment host outlives a database restart: it reconnects and retries the batch.
  spec->postgresql_reconnect_within =
      absl::Seconds(config.GetInt("gallery.postgresql.reconnect_timeout_s"));
  absl::StatusOr<std::unique_ptr<GalleryStore>> store = OpenGalleryStore(*spec);
  if (!store.ok()) {
    std::cerr << "enroll: " << store.status().message() << std::endl;
    return 1;
  }
  const std::string version = model->manifest.version;
  std::cerr << "enroll: model " << version << " (self-test max distance "
            << model->self_test_max_distance << "), " << model->engine->workers()
            << " workers, gallery " << gallery << ", store " << (*store)->location() << std::endl;

  GalleryWriter writer(**store, /*index=*/nullptr);
  Enroller enroller(*model->engine, writer, version);
  EnrollOptions options;
  options.commit_batch_images = static_cast<int>(config.GetInt("gallery.commit_batch_images"));
  options.retry_failures = retry_failures;
  options.claim_lease = absl::Seconds(config.GetInt("gallery.postgresql.claim_lease_seconds"));
  options.after_claim = TestPauseAfterClaim();
  EnrollProgressPrinter printer(std::cerr, ::isatty(STDERR_FILENO) == 1);
  absl::StatusOr<EnrollSummary> summary = enroller.EnrollFolder(
      gallery, options, [&printer](const EnrollProgress& p) { printer.Report(p); });
  printer.Finish();
  if (!summary.ok()) {
    std::cerr << "enroll: " << summary.status().message()
              << "; batches committed before the error are kept, run again to resume" << std::endl;
    return 1;
  }
  // The change log's rows every live follower applied are not needed any more.
  if (absl::StatusOr<ChangeLogPrune> prune = (*store)->PruneChanges(); prune.ok()) {
    std::cerr << "enroll: change log pruned through " << prune->pruned_through << ": "
              << prune->rows_deleted << " rows deleted, " << prune->live_followers
              << " live followers";
    if (prune->followers_dropped > 0) {
      std::cerr << ", " << prune->followers_dropped << " silent ones forgotten";
    }
    std::cerr << std::endl;
  } else if (!absl::IsUnimplemented(prune.status())) {
    std::cerr << "enroll: cannot prune the change log (the next run tries again): "
              << prune.status().message() << std::endl;
  }
  const EnrollSummary& s = *summary;
  for (size_t i = 0; i < s.problems.size() && i < kProblemsShown; ++i) {
    std::cerr << "enroll: not enrolled: " << s.problems[i] << "\n";
  }
  if (s.problems.size() > kProblemsShown) {
    std::cerr << "enroll: ... and " << s.problems.size() - kProblemsShown << " more not enrolled\n";
  }
  if (s.failed > 0) {
    std::cerr << "enroll: " << s.failed << " failures to enrol; list them with `partner_node "
              << "enroll --config " << config_path << " --failures`\n";
  }
  if (s.stale_uploads > 0) {
    std::cerr << "enroll: " << s.stale_uploads << " images enrolled through the local API "
              << "under another model version must be enrolled again through the API\n";
  }
  if (!s.commit_ms.empty()) {
    std::vector<double> ms = s.commit_ms;
    std::sort(ms.begin(), ms.end());
    double total = 0;
    for (double m : ms) total += m;
    char line[160];
    std::snprintf(line, sizeof(line),
                  "enroll: %zu batches committed: %.1f ms median, %.1f ms p90, %.2f s of store "
                  "time in all\n",
                  ms.size(), ms[ms.size() / 2], ms[std::min(ms.size() - 1, ms.size() * 9 / 10)],
                  total / 1000);
    std::cerr << line;
  }
  char rate[96];
  std::snprintf(rate, sizeof(rate), "%.2f s, %.2f images/s", s.embed_seconds, s.ImagesPerSecond());
  std::cout << "enroll: model " << version << ": " << s.files << " files: " << s.new_files
            << " new, " << s.changed_files << " changed, " << s.reembedded << " re-embedded, "
            << s.unchanged << " unchanged, " << s.removed << " removed; " << s.enrolled
            << " enrolled, " << s.failed << " failed, " << s.unreadable << " unreadable; "
            << s.processed << " images in " << rate << std::endl;
  return 0;
}

}  // namespace

int RunEnroll(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli =
      CliArgs::Parse(args, {"config", "gallery"}, {"help", "failures", "retry-failures", "status"});
  if (!cli.ok()) {
    std::cerr << "enroll: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintEnrollHelp(std::cout);
    return 0;
  }
  if (!cli->positionals().empty()) {
    std::cerr << "enroll: unexpected argument '" << cli->positionals()[0] << "'\n";
    return 2;
  }
  if (cli->Has("failures") && (cli->Has("gallery") || cli->Has("retry-failures"))) {
    std::cerr << "enroll: --failures lists; it takes no --gallery or --retry-failures\n";
    return 2;
  }
  absl::StatusOr<std::string> config_path = cli->Require("config");
  if (!config_path.ok()) {
    std::cerr << "enroll: " << config_path.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<Config> config = Config::Load(*config_path, PartnerConfigSchema());
  if (!config.ok()) {
    std::cerr << "enroll: " << config.status().message() << std::endl;
    return 1;
  }
  if (cli->Has("failures")) return ListFailures(*config);
  if (cli->Has("status")) return ShowStatus(*config);
  const std::string gallery = cli->GetOr("gallery", config->GetPath("gallery.dir"));
  if (gallery.empty()) {
    std::cerr << "enroll: no gallery folder: give --gallery DIR or set gallery.dir in "
              << *config_path << "\n";
    return 2;
  }
  return Enroll(*config, *config_path, gallery, cli->Has("retry-failures"));
}

}  // namespace fedface::partner
