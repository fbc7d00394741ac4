// `partner_node releases list|show ID|approve ID|decline ID --config FILE`: the releases held for
// approval (egress.require_approval), for the person who decides what leaves.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/cli_args.h"
#include "core/common/sha256.h"
#include "core/config/config_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/egress/evaluation_fingerprint.h"
#include "partner_node/egress/held_release_store.h"
#include "partner_node/egress/privacy_budget.h"
#include "partner_node/egress/release_approval.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/serve/exact_beside_released.h"
#include "partner_node/serve/local_evaluation.h"
#include "partner_node/serve/release_text.h"
#include "partner_node/serve/serve_config.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node releases list|show ID [--local]|approve ID|decline ID --config FILE\n"
    "\n"
    "Releases held for approval (egress.require_approval: true). `partner_node serve` builds a\n"
    "held release with the egress guard when the vendor asks, sends nothing and tells the vendor\n"
    "\"held for approval (id N)\"; the vendor retries the same round later.\n"
    "\n"
    "  list        every held release: id, state (held, approved, sent, declined), vendor,\n"
    "              round, request, epsilon, size and sha256 of the exact bytes, times\n"
    "  show ID     the release's fields exactly as the vendor would receive them\n"
    "  show ID --local\n"
    "              also the EXACT figures beside the released ones: the same request evaluated\n"
    "              again here, without privacy, from this partner's gallery (what the noise\n"
    "              cost). Printed on this machine only, never sent, stored or recorded; refused\n"
    "              when the gallery or its embeddings changed since the release was held\n"
    "  approve ID  charge the vendor's privacy budget and make the release the answer to the\n"
    "              vendor's next retry of that round (it is sent then, and recorded in the\n"
    "              egress ledger); refused when the budget cannot pay for it\n"
    "  decline ID  never send it; the vendor's retries of that round are refused\n"
    "\n"
    "  --config FILE  the partner_node configuration (egress.held_releases_path, egress.*)\n";

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

void PrintTable(const std::vector<HeldRelease>& rows, std::ostream& out) {
  const std::vector<std::string> head = {"id",      "state",   "vendor", "round",
                                         "request", "epsilon", "bytes",  "sha256",
                                         "held",    "decided", "sent"};
  std::vector<std::vector<std::string>> table;
  for (const HeldRelease& r : rows) {
    table.push_back({absl::StrCat(r.id), HeldStateName(r.state), r.vendor, r.round_id, r.summary,
                     absl::StrFormat("%g", r.epsilon), absl::StrCat(r.release_bytes.size()),
                     Sha256Hex(r.release_bytes).substr(0, 12), r.held_utc,
                     r.decided_utc.empty() ? "-" : r.decided_utc,
                     r.sent_utc.empty() ? "-" : r.sent_utc});
  }
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& r : table) width[c] = std::max(width[c], r[c].size());
  }
  auto print = [&](const std::vector<std::string>& r) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c)
      line += c + 1 == r.size() ? r[c] : Pad(r[c], width[c] + 2);
    out << line << "\n";
  };
  print(head);
  for (const auto& r : table) print(r);
}

int Fail(const std::string& message) {
  std::cerr << "partner_node releases: " << message << "\n";
  return 1;
}

int Approve(const HeldRelease& release, HeldReleaseStore& store, const EgressSettings& egress) {
  switch (release.state) {
    case HeldState::kApproved:
      std::cout << "release " << release.id << " is already approved; the vendor's next retry of "
                << "round " << release.round_id << " receives it\n";
      return 0;
    case HeldState::kSent:
      std::cout << "release " << release.id << " was already sent\n";
      return 0;
    case HeldState::kDeclined:
      return Fail(absl::StrCat("release ", release.id, " was declined; it cannot be approved"));
    case HeldState::kHeld:
      break;
  }
  absl::StatusOr<std::unique_ptr<PrivacyBudget>> budget =
      PrivacyBudget::Open(egress.budget_path, egress.epsilon_budget);
  if (!budget.ok()) return Fail(std::string(budget.status().message()));
  // Charged and stored as the vendor's release of this round: serve's replay sends exactly it.
  if (absl::Status s = ApproveHeldRelease(release, store, **budget); !s.ok()) {
    return Fail(
        absl::StrCat("cannot approve release ", release.id, ": ", s.message(), "; it stays held"));
  }
  absl::StatusOr<double> spent = (*budget)->SpentByAll();
  std::cout << "release " << release.id << " approved: vendor " << release.vendor
            << "'s next retry of round " << release.round_id << " receives these "
            << release.release_bytes.size() << " bytes (sha256 " << Sha256Hex(release.release_bytes)
            << "); epsilon " << release.epsilon << " charged"
            << (spent.ok() ? absl::StrFormat(" (all vendors spent %g of %g)", *spent,
                                             egress.epsilon_budget)
                           : std::string())
            << "\n";
  return 0;
}

// `show ID --local`: the request of the held release evaluated again here, and the exact figures
// printed beside the released ones. Nothing of it is stored, recorded or sent.
int ShowLocal(const HeldRelease& held, const Config& config, const EgressGuardConfig& guard) {
  fedface::v1::RunEvaluationRequest request;
  if (held.evaluation_sha256.empty() || !request.ParseFromString(held.request_bytes)) {
    return Fail(absl::StrCat("release ", held.id,
                             " was held by an older partner_node that did not record what it was "
                             "computed from; its exact figures cannot be recomputed"));
  }
  fedface::v1::EvaluationRelease release;
  if (!release.ParseFromString(held.release_bytes)) {
    return Fail(absl::StrCat("release ", held.id, ": the stored bytes are not a release"));
  }
  absl::StatusOr<LocalEvaluation> local = EvaluateLocally(config, guard, &request);
  if (!local.ok()) {
    return Fail(
        absl::StrCat("cannot recompute release ", held.id, " locally: ", local.status().message()));
  }
  if (EvaluationFingerprint(local->aggregate) != held.evaluation_sha256) {
    return Fail(absl::StrCat("the gallery (or its embeddings) changed since release ", held.id,
                             " was held: a fresh evaluation no longer describes the data behind "
                             "it, so no exact figures are shown"));
  }
  std::cout << "\nLOCAL ONLY (never sent, stored or recorded): the exact figures of this "
               "request, recomputed now from this partner's gallery without privacy, beside "
               "the released ones\n";
  PrintExactBesideReleased(release, local->aggregate, std::cout);
  return 0;
}

}  // namespace

int RunReleases(const std::vector<std::string>& raw) {
  absl::StatusOr<CliArgs> args = CliArgs::Parse(raw, {"config"}, {"help", "local"});
  if (!args.ok()) {
    std::cerr << "partner_node releases: " << args.status().message() << "\n" << kUsage;
    return 2;
  }
  if (args->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  const std::vector<std::string>& pos = args->positionals();
  const std::string action = pos.empty() ? "" : pos[0];
  const bool needs_id = action == "show" || action == "approve" || action == "decline";
  if (!(action == "list" || needs_id) || pos.size() != (needs_id ? 2u : 1u) ||
      !args->Has("config") || (args->Has("local") && action != "show")) {
    std::cerr << "partner_node releases: give list, show ID [--local], approve ID or decline ID, "
                 "and --config FILE\n"
              << kUsage;
    return 2;
  }
  int64_t id = 0;
  if (needs_id && (!absl::SimpleAtoi(pos[1], &id) || id <= 0)) {
    std::cerr << "partner_node releases: '" << pos[1] << "' is not a release id\n";
    return 2;
  }
  absl::StatusOr<Config> config = Config::Load(*args->Get("config"), PartnerConfigSchema());
  if (!config.ok()) return Fail(std::string(config.status().message()));
  absl::StatusOr<EgressSettings> egress = EgressSettingsFrom(*config);
  if (!egress.ok()) return Fail(std::string(egress.status().message()));

  if (!std::filesystem::exists(egress->held_releases_path)) {
    if (action == "list") {
      std::cout << "no release has been held (" << egress->held_releases_path
                << " does not exist; approval mode is "
                << (egress->guard.require_approval ? "on" : "off") << ")\n";
      return 0;
    }
    return Fail(
        absl::StrCat("no held release ", id, ": ", egress->held_releases_path, " does not exist"));
  }
  absl::StatusOr<std::unique_ptr<HeldReleaseStore>> store =
      HeldReleaseStore::Open(egress->held_releases_path, HeldReleaseStore::OpenMode::kMustExist);
  if (!store.ok()) return Fail(std::string(store.status().message()));

  if (action == "list") {
    absl::StatusOr<std::vector<HeldRelease>> rows = (*store)->List();
    if (!rows.ok()) return Fail(std::string(rows.status().message()));
    PrintTable(*rows, std::cout);
    return 0;
  }
  absl::StatusOr<std::optional<HeldRelease>> release = (*store)->Get(id);
  if (!release.ok()) return Fail(std::string(release.status().message()));
  if (!release->has_value()) return Fail(absl::StrCat("no held release with id ", id));
  const HeldRelease& r = **release;
  if (action == "show") {
    std::cout << "release  " << r.id << " (" << HeldStateName(r.state) << ") for vendor "
              << r.vendor << ", round " << r.round_id << ": " << r.summary << ", epsilon "
              << r.epsilon << "\n";
    PrintReleaseText(r.release_bytes, std::cout);
    if (args->Has("local")) return ShowLocal(r, *config, egress->guard);
    return 0;
  }
  if (action == "approve") return Approve(r, **store, *egress);
  if (absl::Status s = (*store)->MarkDeclined(r.id); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  std::cout << "release " << r.id << " declined: it is never sent; vendor " << r.vendor
            << "'s retries of round " << r.round_id << " are refused\n";
  return 0;
}

}  // namespace fedface::partner
