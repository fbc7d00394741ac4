// `partner_node models pull|list|activate --config FILE`: the partner's model cache.
//
// `activate` is the partner's own decision to serve another installed version (a vendor round
// only ever EVALUATES a version, see partner_node/serve/evaluation_job.h). It refuses a version
// older than the active one (version_order.h) unless --allow-downgrade is given, so that an
// older, weaker signed version is never made active by accident. A running `partner_node serve`
// keeps the model it started with until it is restarted.
#include <grpcpp/client_context.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "core/package/ed25519.h"
#include "core/package/model_manifest.h"
#include "fedface/v1/model_registry.grpc.pb.h"
#include "partner_node/cli/command.h"
#include "partner_node/model_cache/model_cache.h"
#include "partner_node/model_cache/model_puller.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/model_cache/vendor_channel.h"
#include "partner_node/model_cache/version_order.h"

namespace fedface::partner {
namespace {

void PrintModelsHelp(std::ostream& out) {
  out << "usage: partner_node models pull [--version V] --config FILE\n"
         "       partner_node models list [--remote] --config FILE\n"
         "       partner_node models activate VERSION [--allow-downgrade] --config FILE\n\n"
         "  pull      download the pinned (model_cache.pinned_version) or newest version from\n"
         "            the vendor, verify it against the pinned vendor key (signature, weights\n"
         "            sha256, self-test), install it and make it active. An interrupted\n"
         "            download resumes on the next pull. Refusals leave the active model as it\n"
         "            was.\n"
         "  list      installed versions, the active one marked '*'; --remote: what the vendor\n"
         "            offers\n"
         "  activate  verify an installed version again and make it active. A version older\n"
         "            than the active one is refused unless --allow-downgrade is given. A running\n"
         "            `partner_node serve` keeps its model until it is restarted.\n\n"
         "  --config FILE      the partner's YAML configuration below (required)\n"
         "  --version V        pull this version instead of the pinned or newest one\n"
         "  --remote           list the vendor's versions instead of the installed ones\n"
         "  --allow-downgrade  let activate make an older version active (a rollback)\n"
         "  --help         this text\n\n"
         "Exit codes: 0 done, 1 refused or failed (one line on stderr), 2 usage error.\n\n"
      << PartnerConfigSchema().HelpText();
}

// The active version for messages: "1.0.0", "none", or why it cannot be read.
std::string ActiveForMessage(const Config& config) {
  absl::StatusOr<ModelCache> cache = ModelCache::Open(config.GetPath("model_cache.dir"));
  if (!cache.ok()) return "unknown";
  absl::StatusOr<std::string> active = cache->ActiveVersion();
  if (!active.ok()) return "unreadable";
  return active->empty() ? "none" : *active;
}

int Pull(const Config& config, const CliArgs& cli) {
  PullRequest request;
  request.version = cli.GetOr("version", "");
  absl::StatusOr<PullResult> result = PullModel(config, request, &std::cout);
  if (!result.ok()) {
    std::cerr << "models pull: " << result.status().message() << "; active model stays "
              << ActiveForMessage(config) << std::endl;
    return 1;
  }
  std::cout << "active: " << result->version;
  if (!result->previous_active.empty() && result->previous_active != result->version) {
    std::cout << " (was " << result->previous_active << ")";
  }
  if (result->downloaded) {
    std::cout << "; downloaded " << result->received << " of " << result->weights_bytes
              << " weight bytes";
    if (result->resumed_from > 0) std::cout << " resuming at byte " << result->resumed_from;
    char figures[128];
    std::snprintf(figures, sizeof(figures),
                  " in %.2f s; verified in %.2f s; self-test max distance %.3g",
                  result->download_seconds, result->verify_seconds, result->self_test_max_distance);
    std::cout << figures;
  }
  std::cout << std::endl;
  return 0;
}

int ListInstalled(const Config& config) {
  absl::StatusOr<ModelCache> cache = ModelCache::Open(config.GetPath("model_cache.dir"));
  if (!cache.ok()) {
    std::cerr << "models list: " << cache.status().message() << std::endl;
    return 1;
  }
  absl::StatusOr<std::string> active = cache->ActiveVersion();
  if (!active.ok()) std::cerr << "models list: warning: " << active.status().message() << "\n";
  absl::StatusOr<std::vector<InstalledModel>> models = cache->List();
  if (!models.ok()) {
    std::cerr << "models list: " << models.status().message() << std::endl;
    return 1;
  }
  if (models->empty()) std::cout << "no model installed in " << cache->dir() << "\n";
  for (const InstalledModel& m : *models) {
    std::cout << (m.active ? "* " : "  ") << m.version;
    if (m.problem.empty()) {
      std::cout << "  " << m.model_id << "  " << m.weights_bytes << " bytes  sha256 "
                << m.weights_sha256.substr(0, 16) << "  created " << m.created_at;
    } else {
      std::cout << "  (unreadable: " << m.problem << ")";
    }
    std::cout << (m.active ? "  (active)" : "") << "\n";
  }
  std::cout.flush();
  return 0;
}

int ListRemote(const Config& config) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenVendorChannel(config);
  if (!channel.ok()) {
    std::cerr << "models list: " << channel.status().message() << std::endl;
    return 1;
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(config.GetInt("model_cache.rpc_deadline_seconds")));
  fedface::v1::ListModelsResponse listing;
  grpc::Status s = fedface::v1::ModelRegistry::NewStub(*channel)->ListModels(
      &context, fedface::v1::ListModelsRequest(), &listing);
  if (!s.ok()) {
    std::cerr << "models list: vendor " << config.GetString("vendor.address")
              << ": ListModels failed: " << s.error_message() << std::endl;
    return 1;
  }
  for (const auto& m : listing.models()) {
    std::cout << "  " << m.version() << "  " << m.model_id() << "  " << m.weights_bytes()
              << " bytes  signed by " << m.signing_key_id() << "  created " << m.created_at()
              << "\n";
  }
  std::cout.flush();
  return 0;
}

int Activate(const Config& config, const std::string& version, bool allow_downgrade) {
  absl::StatusOr<Ed25519PublicKey> pinned_key =
      Ed25519PublicKey::LoadPem(config.GetPath("vendor.signing_key"));
  absl::StatusOr<ModelCache> cache = ModelCache::Open(config.GetPath("model_cache.dir"));
  absl::Status failure = !pinned_key.ok() ? pinned_key.status() : cache.status();
  absl::StatusOr<ModelCacheLock> lock = failure.ok() ? ModelCacheLock::Acquire(cache->dir())
                                                     : absl::StatusOr<ModelCacheLock>(failure);
  if (!lock.ok()) {
    std::cerr << "models activate: " << lock.status().message() << std::endl;
    return 1;
  }
  absl::StatusOr<std::string> active = cache->ActiveVersion();
  const std::string previous = active.ok() ? *active : "";
  if (!previous.empty() && IsValidModelVersion(version) &&
      CompareModelVersions(version, previous) < 0 && !allow_downgrade) {
    std::cerr << "models activate: refused version " << version << ": it is older than the "
              << "active version " << previous << " (pass --allow-downgrade to roll back); "
              << "active model stays " << previous << std::endl;
    return 1;
  }
  absl::StatusOr<LoadedModel> model = cache->Activate(version, *pinned_key);
  if (!model.ok()) {
    std::cerr << "models activate: refused version " << version << ": " << model.status().message()
              << "; active model stays " << ActiveForMessage(config) << std::endl;
    return 1;
  }
  char distance[32];
  std::snprintf(distance, sizeof(distance), "%.3g", model->self_test_max_distance);
  std::cout << "active: " << version;
  if (!previous.empty() && previous != version) {
    std::cout << " (was " << previous
              << (CompareModelVersions(version, previous) < 0 ? ", downgrade allowed" : "") << ")";
  }
  std::cout << "; verified, self-test max distance " << distance
            << "; a running `partner_node serve` uses it after a restart" << std::endl;
  return 0;
}

}  // namespace

int RunModels(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli =
      CliArgs::Parse(args, {"config", "version"}, {"help", "remote", "allow-downgrade"});
  if (!cli.ok()) {
    std::cerr << "models: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintModelsHelp(std::cout);
    return 0;
  }
  const std::vector<std::string>& pos = cli->positionals();
  const std::string action = pos.empty() ? "" : pos[0];
  const size_t want_positionals = action == "activate" ? 2 : 1;
  if ((action != "pull" && action != "list" && action != "activate") ||
      pos.size() != want_positionals) {
    std::cerr << "models: expected `pull`, `list` or `activate VERSION`\n";
    PrintModelsHelp(std::cerr);
    return 2;
  }
  if ((cli->Has("version") && action != "pull") || (cli->Has("remote") && action != "list") ||
      (cli->Has("allow-downgrade") && action != "activate")) {
    std::cerr << "models: --version is for pull, --remote for list, --allow-downgrade for "
                 "activate\n";
    return 2;
  }
  absl::StatusOr<std::string> config_path = cli->Require("config");
  if (!config_path.ok()) {
    std::cerr << "models " << action << ": " << config_path.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<Config> config = Config::Load(*config_path, PartnerConfigSchema());
  if (!config.ok()) {
    std::cerr << "models " << action << ": " << config.status().message() << std::endl;
    return 1;
  }
  if (action == "pull") return Pull(*config, *cli);
  if (action == "activate") return Activate(*config, pos[1], cli->Has("allow-downgrade"));
  return cli->Has("remote") ? ListRemote(*config) : ListInstalled(*config);
}

}  // namespace fedface::partner
