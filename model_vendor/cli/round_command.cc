// `model_vendor round --config FILE --model VERSION --protocol verification|identification
//  --out DIR [--round-id ID] [--plaintext]`: runs one evaluation round across the configured
// partners, stores it, writes DIR/report.json and DIR/report.html and prints the table.
// Exit code: 0 when the quorum was met, 1 when not (the report says why) or on an error, 2 on
// a usage error.
#include <grpcpp/security/credentials.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/common/files.h"
#include "core/config/config_file.h"
#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"
#include "core/wire/protocol_names.h"
#include "model_vendor/cli/command.h"
#include "model_vendor/cli/vendor_config.h"
#include "model_vendor/coordinator/coordinator_files.h"
#include "model_vendor/coordinator/pooled_metrics.h"
#include "model_vendor/coordinator/round_runner.h"
#include "model_vendor/coordinator/round_settings.h"
#include "model_vendor/coordinator/rounds_store.h"

namespace fedface::vendor {
namespace {

void PrintRoundHelp(std::ostream& out) {
  out << "usage: model_vendor round --config FILE --model VERSION\n"
         "                          --protocol verification|identification --out DIR\n"
         "                          [--round-id ID] [--plaintext | --tls-keylog FILE]\n\n"
         "Asks every partner of coordinator.partners, in parallel, to evaluate model VERSION on\n"
         "its own faces and pools the aggregate releases they send back. Partners that are down,\n"
         "slow, refuse or fail are reported with the reason; the round succeeds when at least\n"
         "coordinator.quorum partners contributed. Writes DIR/report.json and DIR/report.html,\n"
         "prints a summary table and records the round in coordinator.rounds_db.\n\n"
         "  --config FILE    the vendor's YAML configuration (coordinator.* keys below)\n"
         "  --model VERSION  the model version partners evaluate (they pull and verify it)\n"
         "  --protocol P     verification (1:1) or identification (1:N)\n"
         "  --out DIR        folder for report.json and report.html (created)\n"
         "  --round-id ID    re-run or finish round ID: partners that already answered it\n"
         "                   replay their release without charging their privacy budget again.\n"
         "                   Default: a new id.\n"
         "  --plaintext      AUDITS ONLY: talk to partners without TLS (their plaintext audit\n"
         "                   listener); refused unless every partner address is loopback\n"
         "  --tls-keylog FILE  AUDITS ONLY: append the TLS session secrets of the round's\n"
         "                   channels to FILE (overrides audit.tls_key_log; see\n"
         "                   `partner_node audit --tls-keylog`)\n"
         "  --help           this text\n\n"
         "Exit code: 0 quorum met, 1 quorum not met or an error, 2 usage error.\n\n"
      << VendorConfigSchema().HelpText();
}

bool IsLoopbackAddress(const std::string& address) {
  const std::string host = address.substr(0, address.rfind(':'));
  return host == "127.0.0.1" || host == "[::1]" || host == "localhost" ||
         host.rfind("127.", 0) == 0;
}

absl::Status CheckModelVersion(const std::string& v) {
  bool ok = !v.empty() && v.size() <= 64;
  for (char c : v) {
    ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                c == '.' || c == '+' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--model '", v, "' must be 1 to 64 characters of [0-9A-Za-z.+-]"));
}

}  // namespace

int RunRound(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli =
      CliArgs::Parse(args, {"config", "model", "protocol", "out", "round-id", "tls-keylog"},
                     {"help", "plaintext"});
  if (!cli.ok()) {
    std::cerr << "model_vendor round: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintRoundHelp(std::cout);
    return 0;
  }
  std::string usage_error;
  for (const char* flag : {"config", "model", "protocol", "out"}) {
    if (!cli->Has(flag) && usage_error.empty())
      usage_error = absl::StrCat("--", flag, " is required");
  }
  if (usage_error.empty() && !cli->positionals().empty()) {
    usage_error = "unexpected argument " + cli->positionals().front();
  }
  std::optional<fedface::v1::EvaluationProtocol> protocol;
  if (usage_error.empty()) {
    protocol = ProtocolFromName(*cli->Get("protocol"));
    if (!protocol) {
      usage_error = absl::StrCat("--protocol must be verification or identification, got '",
                                 *cli->Get("protocol"), "'");
    }
  }
  if (usage_error.empty()) {
    if (absl::Status s = CheckModelVersion(*cli->Get("model")); !s.ok()) {
      usage_error = std::string(s.message());
    }
  }
  std::string round_id = cli->GetOr("round-id", "");
  if (usage_error.empty() && cli->Has("round-id")) {
    if (absl::Status s = CheckRoundId(round_id); !s.ok()) usage_error = std::string(s.message());
  }
  if (!usage_error.empty()) {
    std::cerr << "model_vendor round: " << usage_error << " (see --help)\n";
    return 2;
  }

  const ConfigSchema schema = VendorConfigSchema();
  absl::StatusOr<Config> config = Config::Load(*cli->Get("config"), schema);
  if (!config.ok()) {
    std::cerr << "model_vendor round: " << config.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<CoordinatorSettings> settings = LoadCoordinatorSettings(*config);
  if (!settings.ok()) {
    std::cerr << "model_vendor round: " << settings.status().message() << "\n";
    return 1;
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (cli->Has("plaintext")) {
    for (const PartnerEndpoint& p : settings->partners) {
      if (!IsLoopbackAddress(p.address)) {
        std::cerr << "model_vendor round: --plaintext is for local audits only; partner " << p.name
                  << " is at " << p.address << ", not a loopback address\n";
        return 1;
      }
    }
    credentials = grpc::InsecureChannelCredentials();
  } else {
    if (settings->tls.cert.empty() || settings->tls.key.empty()) {
      std::cerr << "model_vendor round: " << config->source()
                << ": coordinator.client_cert and coordinator.client_key are required (the "
                   "coordinator's client certificate, coordinator.crt of scripts/make_certs.sh)\n";
      return 1;
    }
    absl::StatusOr<TlsMaterial> tls = LoadTlsMaterial(settings->tls);
    if (!tls.ok()) {
      std::cerr << "model_vendor round: " << tls.status().message() << "\n";
      return 1;
    }
    absl::StatusOr<TlsEndpointOptions> tls_options =
        cli->Has("tls-keylog") ? TlsEndpointOptionsFor(*cli->Get("tls-keylog"))
                               : TlsEndpointOptionsFrom(*config);
    if (!tls_options.ok()) {
      std::cerr << "model_vendor round: " << tls_options.status().message() << "\n";
      return 1;
    }
    credentials = MutualTlsChannelCredentials(*tls, *tls_options);
  }
  absl::StatusOr<std::unique_ptr<RoundsStore>> store = RoundsStore::Open(settings->rounds_db);
  if (!store.ok()) {
    std::cerr << "model_vendor round: " << store.status().message() << "\n";
    return 1;
  }
  const std::string out_dir = *cli->Get("out");
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec || !std::filesystem::is_directory(out_dir)) {
    std::cerr << "model_vendor round: " << out_dir << ": cannot create the report folder"
              << (ec ? ": " + ec.message() : "") << "\n";
    return 1;
  }

  if (round_id.empty()) round_id = NewRoundId();
  RoundRecord record;
  record.request = {round_id, *cli->Get("model"), *protocol, RoundSeed(round_id),
                    settings->non_mated_sample_size};
  record.quorum = settings->policy.quorum;
  record.target_fmr = settings->target_fmr;
  record.started_at = FormatUtc(absl::Now());
  absl::StatusOr<int> runs = (*store)->BeginRound(record);
  if (!runs.ok()) {
    std::cerr << "model_vendor round: " << runs.status().message() << "\n";
    return 1;
  }
  record.runs = *runs;
  std::cerr << "model_vendor round: round " << round_id << (*runs > 1 ? " (re-run)" : "")
            << ": asking " << settings->partners.size() << " partner(s) for model "
            << record.request.model_version << ", " << ProtocolName(*protocol) << std::endl;

  RoundRunner runner(credentials, settings->policy, &std::cerr);
  absl::Status store_status;
  record.outcomes = runner.Run(record.request, settings->partners, [&](const PartnerOutcome& o) {
    int position = 0;
    while (settings->partners[static_cast<std::size_t>(position)].name != o.partner.name) {
      ++position;
    }
    absl::Status s = (*store)->SaveOutcome(round_id, position, o);
    if (!s.ok() && store_status.ok()) store_status = s;
  });
  record.finished_at = FormatUtc(absl::Now());
  if (store_status.ok()) store_status = (*store)->FinishRound(round_id, record.finished_at);
  if (!store_status.ok()) {
    std::cerr << "model_vendor round: the round could not be recorded: " << store_status.message()
              << "\n";
  }

  const RoundReport report = BuildRoundReport(record);
  absl::StatusOr<ReportFiles> files = WriteReportFiles(report, out_dir);
  if (!files.ok()) {
    std::cerr << "model_vendor round: " << files.status().message() << "\n";
    return 1;
  }
  std::cout << RoundReportTableText(report) << "\nReport: " << files->json_path << "\n        "
            << files->html_path << std::endl;
  if (!store_status.ok()) return 1;
  return report.state == "complete" ? 0 : 1;
}

}  // namespace fedface::vendor
