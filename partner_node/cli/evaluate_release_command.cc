// `partner_node evaluate-release --config FILE --protocol P [...]`: the release preview. Runs the
// same evaluation job and the same egress guard pipeline as `serve` would for a vendor's round,
// and prints exactly what the vendor would receive, WITHOUT sending it, charging the privacy
// budget or writing the ledger (PreviewRelease, egress/release_composer.h). Changes nothing: it
// never switches models.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <shared_mutex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/cli_args.h"
#include "core/common/files.h"
#include "core/config/config_file.h"
#include "core/wire/protocol_names.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/egress/release_composer.h"
#include "partner_node/egress/vendor_request.h"
#include "partner_node/enroll/enroll_config.h"
#include "partner_node/gallery/gallery_store.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/serve/evaluation_job.h"
#include "partner_node/serve/evaluation_rounds.h"
#include "partner_node/serve/local_evaluation.h"
#include "partner_node/serve/release_text.h"
#include "partner_node/serve/serve_config.h"
#include "partner_node/serve/serving_model.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node evaluate-release --config FILE --protocol verification|identification\n"
    "           [--seed N] [--non-mated-sample N] [--model-version V] [--round-id ID]\n"
    "           [--vendor NAME] [--out FILE]\n"
    "\n"
    "Release preview: evaluates the partner's gallery as a vendor round would (same protocol,\n"
    "same egress guard: k-minimum, differential privacy, allowlist) and prints every field of\n"
    "the EvaluationRelease the vendor would receive, with its size and sha256. Nothing is sent,\n"
    "nothing is charged to the privacy budget, nothing is written to the egress ledger.\n"
    "With differential privacy on, the noise in the preview is drawn freshly for the preview and\n"
    "NOT stored: the real release of a round carries its own, different noise.\n"
    "\n"
    "  --protocol P           verification or identification\n"
    "  --seed N               the round's sampling seed (default 0)\n"
    "  --non-mated-sample N   non-mated comparisons to sample (default 0: all)\n"
    "  --model-version V      must be the active model (default: the active model)\n"
    "  --round-id ID          the round id echoed in the release (default: preview)\n"
    "  --vendor NAME          whose budget to report (default: the first allowed vendor)\n"
    "  --out FILE             also write the exact release bytes to FILE\n";

int Fail(const std::string& message) {
  std::cerr << "partner_node evaluate-release: " << message << "\n";
  return 1;
}

absl::StatusOr<uint64_t> ReadCount(const CliArgs& args, const char* flag) {
  const std::string text = args.GetOr(flag, "0");
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected a non-negative integer, got '", text, "'"));
  }
  return value;
}

// The head a real release would extend now (the ledger is only read); the genesis position when
// the partner has no ledger yet.
fedface::v1::LedgerHead CurrentLedgerHead(const std::string& ledger_path) {
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(kLedgerGenesisHash));
  if (!std::filesystem::exists(ledger_path)) return head;
  absl::StatusOr<std::unique_ptr<EgressLedger>> ledger =
      EgressLedger::Open(ledger_path, EgressLedger::OpenMode::kMustExist);
  absl::StatusOr<LedgerHeadPosition> position =
      ledger.ok() ? (*ledger)->Head() : absl::StatusOr<LedgerHeadPosition>(ledger.status());
  if (position.ok()) {
    head.set_seq(static_cast<uint64_t>(position->seq));
    head.set_entry_hash(position->entry_hash);
  }
  return head;
}

}  // namespace

int RunEvaluateRelease(const std::vector<std::string>& raw) {
  absl::StatusOr<CliArgs> args = CliArgs::Parse(raw,
                                                {"config", "protocol", "seed", "non-mated-sample",
                                                 "model-version", "round-id", "vendor", "out"},
                                                {"help"});
  if (!args.ok()) {
    std::cerr << "partner_node evaluate-release: " << args.status().message() << "\n" << kUsage;
    return 2;
  }
  if (args->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  const std::string protocol_name = args->GetOr("protocol", "");
  fedface::v1::RunEvaluationRequest request;
  if (auto protocol = ProtocolFromName(protocol_name)) request.set_protocol(*protocol);
  absl::StatusOr<uint64_t> seed = ReadCount(*args, "seed");
  absl::StatusOr<uint64_t> sample = ReadCount(*args, "non-mated-sample");
  if (!args->Has("config") || request.protocol() == fedface::v1::EVALUATION_PROTOCOL_UNSPECIFIED ||
      !seed.ok() || !sample.ok() || !args->positionals().empty()) {
    std::cerr << "partner_node evaluate-release: "
              << (!seed.ok()     ? std::string(seed.status().message())
                  : !sample.ok() ? std::string(sample.status().message())
                                 : "give --config FILE and --protocol verification|identification")
              << "\n"
              << kUsage;
    return 2;
  }
  absl::StatusOr<Config> config = Config::Load(*args->Get("config"), PartnerConfigSchema());
  if (!config.ok()) return Fail(std::string(config.status().message()));
  absl::StatusOr<EgressSettings> egress = EgressSettingsFrom(*config);
  if (!egress.ok()) return Fail(std::string(egress.status().message()));
  absl::StatusOr<VendorApiSettings> vendor_api = VendorApiSettingsFrom(*config);
  const std::string vendor = args->GetOr(
      "vendor", vendor_api.ok() ? *vendor_api->allowed_vendors.begin() : std::string("preview"));
  if (absl::Status s = CheckVendorIdentity(vendor); !s.ok()) return Fail(std::string(s.message()));

  request.set_round_id(args->GetOr("round-id", "preview"));
  request.set_model_version(args->GetOr("model-version", ""));
  request.set_seed(*seed);
  request.set_non_mated_sample_size(*sample);
  absl::StatusOr<LocalEvaluation> evaluated = EvaluateLocally(*config, egress->guard, &request);
  if (!evaluated.ok()) return Fail(std::string(evaluated.status().message()));
  const EvaluationAggregate& aggregate = evaluated->aggregate;
  const double seconds = evaluated->seconds;
  absl::StatusOr<std::string> bytes =
      PreviewRelease(egress->guard, request, aggregate, CurrentLedgerHead(LedgerPathFrom(*config)));
  if (!bytes.ok()) return Fail(std::string(bytes.status().message()));

  const EgressGuardConfig& g = egress->guard;
  std::cout << "RELEASE PREVIEW: not sent, not charged to the privacy budget, not in the egress "
               "ledger\n"
            << "request  " << RoundSummary(request) << " round_id=" << request.round_id() << "\n"
            << "evaluated in " << absl::StrFormat("%.3f", seconds) << " s; k-minimum "
            << g.k_minimum << "\n";
  if (g.dp.enabled) {
    std::cout << "privacy  differential privacy ON (epsilon " << g.dp.epsilon_per_release
              << " per release; verification over bin layout 2 with c_g="
              << g.dp.genuine_contribution_bound << ", c_i=" << g.dp.impostor_contribution_bound
              << "). The noise in this preview was drawn freshly and is NOT stored: the real "
                 "release of a round carries different noise.\n";
    if (std::filesystem::exists(egress->budget_path)) {
      absl::StatusOr<std::unique_ptr<PrivacyBudget>> budget =
          PrivacyBudget::Open(egress->budget_path, egress->epsilon_budget);
      absl::StatusOr<double> spent =
          budget.ok() ? (*budget)->SpentByAll() : absl::StatusOr<double>(budget.status());
      if (spent.ok()) {
        const bool refused = !(*budget)->CanPay(g.dp.epsilon_per_release).ok();
        std::cout << "budget   vendors (all identities) have spent epsilon " << *spent << " of "
                  << egress->epsilon_budget
                  << (refused ? "; a real round would be REFUSED (budget exhausted)" : "") << "\n";
      }
    } else {
      std::cout << "budget   vendor " << vendor << " has spent epsilon 0 of "
                << egress->epsilon_budget << "\n";
    }
  } else {
    std::cout << "privacy  differential privacy OFF: the histograms are exact\n";
  }
  PrintReleaseText(*bytes, std::cout);
  if (auto out = args->Get("out")) {
    if (absl::Status s = WriteFileAtomically(*out, *bytes); !s.ok()) {
      return Fail(std::string(s.message()));
    }
    std::cout << "wrote the exact release bytes to " << *out << "\n";
  }
  return 0;
}

}  // namespace fedface::partner
