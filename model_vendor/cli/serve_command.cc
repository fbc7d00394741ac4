// `model_vendor serve --config FILE`: the vendor's gRPC server (mutual TLS) with the model
// registry. Runs until SIGINT/SIGTERM.
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <signal.h>

#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "core/config/server_limits.h"
#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"
#include "model_vendor/cli/command.h"
#include "model_vendor/registry/model_registry_service.h"
#include "model_vendor/cli/vendor_config.h"

namespace fedface::vendor {
namespace {

// Requests are a version string and an offset; anything bigger is not ours.
constexpr int kMaxRequestBytes = 64 << 10;
// A manifest (1 MiB) plus up to 16 chips of 1 MiB each, with room for framing.
constexpr int kMaxResponseBytes = 18 << 20;

void PrintServeHelp(std::ostream& out) {
  out << "usage: model_vendor serve --config FILE\n\n"
         "Serves the packages of the registry folder to the partners in the allowlist, over\n"
         "gRPC with mutual TLS (client certificates required). Logs one line per request to\n"
         "stderr, naming the partner. Stops on SIGINT or SIGTERM.\n\n"
         "  --config FILE   the YAML configuration below (required)\n"
         "  --help          this text\n\n"
      << VendorConfigSchema().HelpText();
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli = CliArgs::Parse(args, {"config"}, {"help"});
  if (!cli.ok()) {
    std::cerr << "model_vendor serve: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintServeHelp(std::cout);
    return 0;
  }
  absl::StatusOr<std::string> config_path = cli->Require("config");
  if (!config_path.ok() || !cli->positionals().empty()) {
    std::cerr << "model_vendor serve: "
              << (config_path.ok() ? "unexpected argument " + cli->positionals().front()
                                   : std::string(config_path.status().message()))
              << "\n";
    return 2;
  }
  const ConfigSchema schema = VendorConfigSchema();
  absl::StatusOr<Config> config = Config::Load(*config_path, schema);
  if (!config.ok()) {
    std::cerr << "model_vendor serve: " << config.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<TlsMaterial> tls =
      LoadTlsMaterial({config->GetPath("server.ca_cert"), config->GetPath("server.cert"),
                       config->GetPath("server.key")});
  if (!tls.ok()) {
    std::cerr << "model_vendor serve: " << tls.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<TlsEndpointOptions> tls_options = TlsEndpointOptionsFrom(*config);
  if (!tls_options.ok()) {
    std::cerr << "model_vendor serve: " << tls_options.status().message() << "\n";
    return 1;
  }
  RegistryServiceOptions options;
  for (const std::string& name : config->GetStringList("server.partners")) {
    options.allowed_partners.insert(name);
  }
  if (options.allowed_partners.empty()) {
    std::cerr << "model_vendor serve: " << config->source()
              << ": server.partners is empty; no partner could connect\n";
    return 1;
  }
  options.max_weights_bytes = static_cast<uint64_t>(config->GetInt("registry.max_weights_bytes"));
  options.chunk_bytes = static_cast<uint32_t>(config->GetInt("registry.chunk_bytes"));
  options.test_delay_per_chunk_ms =
      static_cast<uint32_t>(config->GetInt("registry.test_delay_per_chunk_ms"));
  RegistryFolder folder(config->GetPath("registry.dir"));
  std::vector<std::string> warnings;
  absl::StatusOr<std::vector<PublishedPackage>> packages = folder.Scan(&warnings);
  if (!packages.ok()) {
    std::cerr << "model_vendor serve: " << packages.status().message() << "\n";
    return 1;
  }
  for (const std::string& w : warnings) std::cerr << "model_vendor serve: registry: " << w << "\n";

  // Block the stop signals before gRPC starts its threads, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  ModelRegistryService service(folder, options, &std::cerr);
  const std::string listen = config->GetString("server.listen");
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, MutualTlsServerCredentials(*tls, *tls_options), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
  builder.SetMaxSendMessageSize(kMaxResponseBytes);
  ApplyServerLimits(builder);
  grpc::ResourceQuota quota("model_vendor");
  quota.SetMaxThreads(64);
  builder.SetResourceQuota(quota);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "model_vendor serve: cannot listen on " << listen
              << " (address in use or not local?)\n";
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::cout << "model_vendor serve: listening on " << host << ":" << port << " with "
            << packages->size() << " package(s) for " << options.allowed_partners.size()
            << " partner(s); server certificate CN=" << tls->subject_cn << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "model_vendor serve: signal " << signal_number << ", stopping\n";
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

}  // namespace fedface::vendor
