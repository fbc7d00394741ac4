// `partner_node serve --config FILE`: the partner's server. Two listeners that share nothing but
// the engine and the gallery:
//   - vendor-facing (vendor_api.*): mutual TLS, client certificate required and its name checked
//     against vendor_api.allowed_vendors; offers fedface.v1.EvaluationService ONLY;
//   - local (local_api.*): the local match API for the partner's own applications, on loopback
//     or a Unix socket by default.
// They are two grpc::Server objects, so a connection to the vendor port can only ever reach the
// evaluation service (any other method is UNIMPLEMENTED there). Runs until SIGINT/SIGTERM, then
// answers or refuses every pending call and stops both listeners.
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <signal.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/common/blas_info.h"
#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "core/config/recovering_server.h"
#include "core/config/server_limits.h"
#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/held_release_store.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/enroll/enroll_config.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/local_api/local_api_listener.h"
#include "partner_node/serve/evaluation_galleries.h"
#include "partner_node/serve/evaluation_only_models.h"
#include "partner_node/serve/evaluation_rounds.h"
#include "partner_node/serve/evaluation_service.h"
#include "partner_node/serve/local_api_stack.h"
#include "partner_node/serve/reembedding_allowance.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serve_log.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {
namespace {

constexpr char kName[] = "partner_node serve";

void PrintServeHelp(std::ostream& out) {
  out << "usage: partner_node serve --config FILE\n\n"
         "Runs the partner's server: the vendor-facing evaluation service (mutual TLS, client\n"
         "certificates required, only fedface.v1.EvaluationService) and the local match API for\n"
         "the partner's own applications, on separate listeners. Prints one line with both\n"
         "addresses, the model and the BLAS in use; logs one line per vendor request to stderr.\n"
         "Stops on SIGINT or SIGTERM.\n\n"
         "  --config FILE   the partner_node configuration (keys below)\n"
         "  --help          this text\n\n"
      << PartnerConfigSchema().HelpText();
}

int Fail(const absl::Status& s) {
  std::cerr << kName << ": " << s.message() << "\n";
  return 1;
}

// "host:PORT" with the port gRPC picked.
std::string BoundAddress(const std::string& listen, int port) {
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

}  // namespace

int RunServe(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli = CliArgs::Parse(args, {"config"}, {"help"});
  if (!cli.ok()) {
    std::cerr << kName << ": " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintServeHelp(std::cout);
    return 0;
  }
  absl::StatusOr<std::string> config_path = cli->Require("config");
  if (!config_path.ok() || !cli->positionals().empty()) {
    std::cerr << kName << ": "
              << (config_path.ok() ? "unexpected argument " + cli->positionals().front()
                                   : std::string(config_path.status().message()))
              << "\n";
    return 2;
  }
  // Block the stop signals before any thread starts (engine workers, gRPC), so only sigwait
  // below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  absl::StatusOr<Config> config = Config::Load(*config_path, PartnerConfigSchema());
  if (!config.ok()) return Fail(config.status());
  absl::StatusOr<VendorApiSettings> vendor_api = VendorApiSettingsFrom(*config);
  if (!vendor_api.ok()) return Fail(vendor_api.status());
  const LocalApiSettings local_api = LocalApiSettingsFrom(*config);
  absl::StatusOr<EgressSettings> egress = EgressSettingsFrom(*config);
  if (!egress.ok()) return Fail(egress.status());
  const EvaluationSettings evaluation = EvaluationSettingsFrom(*config);
  if (local_api.listen == vendor_api->listen && !absl::EndsWith(local_api.listen, ":0")) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        config->source(), ": local_api.listen and vendor_api.listen must differ (both ",
        local_api.listen, ")")));
  }

  // audit.tls_key_log: the listener's (and the registry channel's) TLS secrets, for the audit.
  absl::StatusOr<TlsEndpointOptions> tls_options = TlsEndpointOptionsFrom(*config);
  if (!tls_options.ok()) return Fail(tls_options.status());
  std::optional<TlsMaterial> tls;
  if (vendor_api->tls) {
    absl::StatusOr<TlsMaterial> loaded = LoadTlsMaterial(vendor_api->tls_files);
    if (!loaded.ok()) return Fail(loaded.status());
    tls = *std::move(loaded);
  } else {
    std::cerr << kName << ": WARNING: vendor_api.tls is false: the vendor-facing listener on "
              << vendor_api->listen << " is PLAINTEXT and UNAUTHENTICATED; every caller is taken "
              << "to be vendor '" << *vendor_api->allowed_vendors.begin()
              << "'. Use this only on a private link (traffic-audit tests).\n";
  }

  // The stores and the guard.
  // The evaluation jobs' own connection to the gallery store (the local API opens another).
  absl::StatusOr<GalleryStoreSpec> gallery_spec = GalleryStoreSpecFrom(*config);
  if (!gallery_spec.ok()) return Fail(gallery_spec.status());
  absl::StatusOr<std::unique_ptr<GalleryStore>> gallery = OpenGalleryStore(*gallery_spec);
  if (!gallery.ok()) return Fail(gallery.status());
  absl::StatusOr<std::unique_ptr<EgressLedger>> ledger =
      EgressLedger::Open(LedgerPathFrom(*config), EgressLedger::OpenMode::kCreateIfMissing);
  if (!ledger.ok()) return Fail(ledger.status());
  absl::StatusOr<std::unique_ptr<PrivacyBudget>> budget =
      PrivacyBudget::Open(egress->budget_path, egress->epsilon_budget);
  if (!budget.ok()) return Fail(budget.status());
  std::unique_ptr<HeldReleaseStore> held;
  if (egress->guard.require_approval) {
    absl::StatusOr<std::unique_ptr<HeldReleaseStore>> opened = HeldReleaseStore::Open(
        egress->held_releases_path, HeldReleaseStore::OpenMode::kCreateIfMissing);
    if (!opened.ok()) return Fail(opened.status());
    held = *std::move(opened);
  }
  absl::StatusOr<std::unique_ptr<EgressGuard>> guard = EgressGuard::Create(
      egress->guard, budget->get(), ledger->get(), MakeSecureNoiseSource(), held.get());
  if (!guard.ok()) return Fail(guard.status());

  // The model.
  absl::StatusOr<std::unique_ptr<ServingModel>> model =
      ServingModel::Open(*config, EngineOptionsFromConfig(*config), &std::cerr);
  if (!model.ok()) return Fail(model.status());

  // The local listener: the partner's own applications (a grpc::Server of its own).
  absl::StatusOr<std::unique_ptr<LocalApiStack>> local =
      LocalApiStack::Start(*config, (*model)->current(), &std::cerr);
  if (!local.ok()) return Fail(local.status());

  // Evaluation-only state: other versions a vendor asks to evaluate, their embeddings, and the
  // bound on the re-embedding rounds may trigger.
  std::error_code state_error;
  std::filesystem::create_directories(evaluation.state_dir, state_error);
  if (state_error) {
    return Fail(absl::UnavailableError(absl::StrCat("evaluation.state_dir ", evaluation.state_dir,
                                                    ": cannot create: ", state_error.message())));
  }
  absl::StatusOr<std::unique_ptr<ReembeddingAllowance>> reembedding = ReembeddingAllowance::Open(
      evaluation.ReembeddingPath(), {.max_per_round = evaluation.max_reembed_images_per_round,
                                     .max_per_day = evaluation.max_reembed_images_per_day});
  if (!reembedding.ok()) return Fail(reembedding.status());
  EvaluationOnlyModels other_models(*config, EngineOptionsFromConfig(*config), &std::cerr);
  EvaluationGalleries other_galleries(
      evaluation.GalleriesDir(), config->IsSet("gallery.dir") ? config->GetPath("gallery.dir") : "",
      static_cast<int>(config->GetInt("gallery.commit_batch_images")), &std::cerr);

  std::shared_mutex model_lock;
  EvaluationJobContext job;
  job.model = model->get();
  job.gallery = gallery->get();
  job.evaluation = evaluation;
  job.contribution_bound = egress->guard.dp.enabled ? egress->guard.dp.contribution_bound : 0;
  job.verification_bounds = VerificationBoundsOf(egress->guard.dp);
  job.refresh_stale = [stack = local->get()](const ReembeddingAdmission& admit) {
    return stack->ReembedStale(admit);
  };
  job.can_reembed = (*local)->CanReembed();
  job.other_models = &other_models;
  job.other_galleries = &other_galleries;
  job.reembedding = reembedding->get();
  job.model_lock = &model_lock;
  job.log = &std::cerr;
  VendorRateLimiter rate_limiter(vendor_api->rate_limits, nullptr, &std::cerr);
  EvaluationRounds rounds(job, guard->get(), &std::cerr, &rate_limiter);
  EvaluationServiceOptions service_options;
  service_options.allowed_vendors = vendor_api->allowed_vendors;
  if (!vendor_api->tls) service_options.plaintext_vendor = *vendor_api->allowed_vendors.begin();
  service_options.workers = vendor_api->max_concurrent_evaluations;
  EvaluationServiceImpl evaluation_service(service_options, &rounds, &std::cerr);

  // The vendor-facing listener: the evaluation service and nothing else; rebuilt if a
  // connection flood stops gRPC from accepting (RecoveringServer).
  // One credentials object for every build (the TLS key log is opened once).
  const std::shared_ptr<grpc::ServerCredentials> vendor_credentials =
      tls ? MutualTlsServerCredentials(*tls, *tls_options) : grpc::InsecureServerCredentials();
  auto build_vendor_server = [&](const std::string& listen, int* port) {
    grpc::ServerBuilder vendor_builder;
    vendor_builder.AddListeningPort(listen, vendor_credentials, port);
    vendor_builder.RegisterService(&evaluation_service);
    vendor_builder.SetMaxReceiveMessageSize(kMaxVendorRequestBytes);
    vendor_builder.SetMaxSendMessageSize(kMaxVendorResponseBytes);
    ApplyServerLimits(vendor_builder);
    grpc::ResourceQuota vendor_quota("partner_node-vendor");
    vendor_quota.SetMaxThreads(32);
    vendor_builder.SetResourceQuota(vendor_quota);
    std::unique_ptr<grpc::Server> server = vendor_builder.BuildAndStart();
    return *port == 0 ? nullptr : std::move(server);
  };
  absl::StatusOr<std::unique_ptr<RecoveringServer>> vendor_server = RecoveringServer::Start(
      "vendor_api.listen", vendor_api->listen, build_vendor_server, &std::cerr);
  if (!vendor_server.ok()) {
    evaluation_service.Stop();
    return Fail(vendor_server.status());
  }
  const int vendor_port = (*vendor_server)->port();

  if (!IsLoopbackOrUnixAddress(local_api.listen)) {
    std::cerr << kName << ": WARNING: the local match API listens on " << local_api.listen
              << " without authentication; keep that address on the partner's own network\n";
  }

  std::shared_ptr<const LoadedServingModel> loaded = (*model)->current();
  const EgressGuardConfig& g = egress->guard;
  std::cout << kName << ": vendor API on " << BoundAddress(vendor_api->listen, vendor_port)
            << (tls ? absl::StrCat(" (mutual TLS, certificate CN=", tls->subject_cn, ")")
                    : std::string(" (PLAINTEXT)"))
            << " for " << absl::StrJoin(vendor_api->allowed_vendors, ",") << "; local API on "
            << (*local)->address() << "; model " << loaded->version << " ("
            << (loaded->embeddings_per_second
                    ? absl::StrFormat("%.1f embeddings/s", *loaded->embeddings_per_second)
                    : std::string("throughput not measured"))
            << " on " << loaded->engine->workers() << " workers); BLAS " << LoadedBlasDescription()
            << "; k=" << g.k_minimum << "; "
            << (g.dp.enabled ? absl::StrFormat(
                                   "DP on (epsilon %g per release, budget %g, c=%d; verification "
                                   "over bin layout 2 with c_g=%d, c_i=%d, impostor share %g)",
                                   g.dp.epsilon_per_release, egress->epsilon_budget,
                                   g.dp.contribution_bound, g.dp.genuine_contribution_bound,
                                   g.dp.impostor_contribution_bound, g.dp.impostor_epsilon_share)
                             : std::string("DP off"))
            << "; approval " << (egress->guard.require_approval ? "required" : "off")
            << "; other versions "
            << (evaluation.evaluate_other_versions
                    ? absl::StrFormat("evaluated, never activated (re-embedding at most %d images "
                                      "per round, %d per day)",
                                      evaluation.max_reembed_images_per_round,
                                      evaluation.max_reembed_images_per_day)
                    : std::string("refused"))
            << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  ServeLog(&std::cerr, absl::StrCat("signal ", signal_number, ", stopping"));
  evaluation_service.Stop();
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  (*vendor_server)->Shutdown(deadline);
  (*local)->Shutdown(deadline);
  ServeLog(&std::cerr, "stopped");
  return 0;
}

}  // namespace fedface::partner
