// `partner_node local-api --config FILE`: serves only the local match API (no vendor-facing
// listener), for a partner that wants enrol/verify/identify without joining evaluations, and for
// tests. `partner_node serve` hosts the same service beside the vendor-facing one.
#include <signal.h>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/enroll/enroll_config.h"
#include "partner_node/enroll/live_gallery.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/local_api/local_api_listener.h"
#include "partner_node/local_api/local_match_service.h"

namespace fedface::partner {
namespace {

void PrintLocalApiHelp(std::ostream& out) {
  out << "usage: partner_node local-api --config FILE [--listen ADDRESS] [--quiet]\n\n"
         "Serves the local match API (Enroll, Verify, Identify, DeleteSubject; see\n"
         "proto/fedface/v1/local_match.proto) on local_api.listen with the model cache's active\n"
         "model and the gallery store gallery.db, until SIGINT or SIGTERM. It never opens a\n"
         "connection to the vendor. The search index is built from the store at start-up and\n"
         "follows every change made through the API; restart it after `partner_node enroll`\n"
         "ran in another process.\n\n"
         "  --config FILE     the partner's YAML configuration below (required)\n"
         "  --listen ADDRESS  overrides local_api.listen (HOST:PORT, port 0 = any, or\n"
         "                    unix:/absolute/path)\n"
         "  --quiet           no per-request log lines on stderr\n"
         "  --help            this text\n\n"
         "Prints `partner_node local-api: listening on ADDRESS ...` on stderr when ready.\n"
         "Exit codes: 0 stopped by a signal, 1 could not start, 2 usage error.\n\n"
      << PartnerConfigSchema().HelpText();
}

}  // namespace

int RunLocalApi(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli = CliArgs::Parse(args, {"config", "listen"}, {"help", "quiet"});
  if (!cli.ok()) {
    std::cerr << "local-api: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintLocalApiHelp(std::cout);
    return 0;
  }
  if (!cli->positionals().empty()) {
    std::cerr << "local-api: unexpected argument '" << cli->positionals()[0] << "'\n";
    return 2;
  }
  absl::StatusOr<std::string> config_path = cli->Require("config");
  if (!config_path.ok()) {
    std::cerr << "local-api: " << config_path.status().message() << "\n";
    return 2;
  }
  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto fail = [](const absl::Status& s) {
    std::cerr << "local-api: " << s.message() << std::endl;
    return 1;
  };
  absl::StatusOr<Config> config = Config::Load(*config_path, PartnerConfigSchema());
  if (!config.ok()) return fail(config.status());
  const std::string listen = cli->GetOr("listen", config->GetString("local_api.listen"));
  if (absl::Status s = ValidateLocalListenAddress(listen); !s.ok()) return fail(s);
  absl::StatusOr<ActiveModelEngine> model = LoadActiveModelEngine(*config);
  if (!model.ok()) return fail(model.status());
  absl::StatusOr<LocalMatchOptions> options = LocalMatchOptionsFromConfig(*config, model->manifest);
  if (!options.ok()) return fail(options.status());
  options->log_requests = !cli->Has("quiet");
  absl::StatusOr<GalleryStoreSpec> spec = GalleryStoreSpecFrom(*config);
  if (!spec.ok()) return fail(spec.status());
  absl::StatusOr<std::unique_ptr<LiveGallery>> gallery =
      LiveGallery::Open(*spec, model->manifest.version, FaceIndexOptionsFromConfig(*config),
                        FollowIntervalFromConfig(*config));
  if (!gallery.ok()) return fail(gallery.status());
  absl::StatusOr<std::unique_ptr<LocalMatchService>> service =
      LocalMatchService::Create(*model->engine, (*gallery)->writer(), *options);
  if (!service.ok()) return fail(service.status());
  absl::StatusOr<LocalApiListener> listener = StartLocalApiListener(listen, **service);
  if (!listener.ok()) return fail(listener.status());

  if (!IsLoopbackOrUnixAddress(listen)) {
    std::cerr << "local-api: warning: " << listen << " is not a loopback address; the local API "
              << "has no authentication, make sure only the partner's applications reach it\n";
  }
  std::cerr << absl::StrFormat(
                   "partner_node local-api: listening on %s (model %s, %d workers, %d searchable "
                   "faces, searched exactly below %d then by inverted file with nprobe %d, "
                   "threshold %.3g, gallery %s)",
                   listener->address, model->manifest.version, model->engine->workers(),
                   (*gallery)->index().size(), (*gallery)->index().options().approximate_from,
                   (*gallery)->index().options().nprobe, (*options).threshold,
                   (*gallery)->store().location())
            << std::endl;
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "local-api: signal " << signal_number << ", stopping" << std::endl;
  listener->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

}  // namespace fedface::partner
