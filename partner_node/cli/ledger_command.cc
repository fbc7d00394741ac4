// `partner_node ledger show|verify (--config FILE | --ledger PATH)`: the egress ledger for a
// person. show prints every entry as a table; verify walks the hash chain and exits non-zero naming
// the first bad entry.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "core/config/config_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/egress/ledger_anchors.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node ledger show|verify (--config FILE | --ledger PATH) [--full]\n"
    "                                       [--anchors FILE]\n"
    "\n"
    "The partner's egress ledger: one entry per message sent to a vendor (sequence, UTC time,\n"
    "vendor, message type, size and sha256 of the exact bytes sent, request summary), each\n"
    "chained to the previous entry by hash. The ledger never holds the messages themselves.\n"
    "\n"
    "  show     print every entry as a table, then whether the chain verifies\n"
    "  verify   check the whole chain; exit 0 with 'ledger OK: N entries, head HASH', or exit 1\n"
    "           naming the first bad entry (an edited field, a deleted or reordered entry).\n"
    "           Entries removed from the END are found with --anchors.\n"
    "\n"
    "  --config FILE  the partner_node configuration; the ledger is its ledger.path\n"
    "  --ledger PATH  the ledger database file itself\n"
    "  --full         show: print whole sha256 digests instead of their first 12 characters\n"
    "  --anchors FILE verify: also check the ledger heads the vendor received with each release\n"
    "                 (`model_vendor rounds anchors PARTNER` writes the file); exit 1 when an\n"
    "                 anchored entry or a release's own entry is missing or differs\n";

std::string Pad(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

void PrintTable(const std::vector<LedgerEntry>& entries, bool full, std::ostream& out) {
  const std::vector<std::string> head = {"seq",   "time (UTC)", "vendor", "type",
                                         "bytes", "sha256",     "summary"};
  std::vector<std::vector<std::string>> rows;
  rows.reserve(entries.size());
  for (const LedgerEntry& e : entries) {
    rows.push_back({absl::StrCat(e.seq), e.time_utc, e.vendor, e.message_type,
                    absl::StrCat(e.size_bytes),
                    full ? e.message_sha256 : e.message_sha256.substr(0, 12), e.summary});
  }
  std::vector<size_t> width(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& r : rows) width[c] = std::max(width[c], r[c].size());
  }
  auto print = [&](const std::vector<std::string>& r) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line += c + 1 == r.size() ? r[c] : Pad(r[c], width[c] + 2);
    }
    out << line << "\n";
  };
  print(head);
  for (const auto& r : rows) print(r);
}

absl::StatusOr<std::string> LedgerPath(const CliArgs& args) {
  if (args.Has("ledger")) return *args.Get("ledger");
  ConfigSchema schema = PartnerConfigSchema();
  if (!schema.Find(kLedgerPathConfigKey)) schema.Add(EgressLedgerConfigKeys());
  ASSIGN_OR_RETURN(auto config, Config::Load(*args.Get("config"), schema));
  return config.GetPath(kLedgerPathConfigKey);
}

}  // namespace

int RunLedger(const std::vector<std::string>& args) {
  auto parsed = CliArgs::Parse(args, {"config", "ledger", "anchors"}, {"full", "help"});
  if (!parsed.ok()) {
    std::cerr << "partner_node ledger: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  if (parsed->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  const auto& pos = parsed->positionals();
  if (pos.size() != 1 || (pos[0] != "show" && pos[0] != "verify")) {
    std::cerr << "partner_node ledger: expected 'show' or 'verify'\n" << kUsage;
    return 2;
  }
  if (parsed->Has("ledger") == parsed->Has("config")) {
    std::cerr << "partner_node ledger: give exactly one of --config FILE and --ledger PATH\n"
              << kUsage;
    return 2;
  }
  auto path = LedgerPath(*parsed);
  if (!path.ok()) {
    std::cerr << "partner_node ledger: " << path.status().message() << "\n";
    return 1;
  }
  auto ledger = EgressLedger::Open(*path, EgressLedger::OpenMode::kMustExist);
  if (!ledger.ok()) {
    std::cerr << "partner_node ledger: " << ledger.status().message() << "\n";
    return 1;
  }
  if (pos[0] == "show") {
    auto entries = (*ledger)->Entries();
    if (!entries.ok()) {
      std::cerr << "partner_node ledger: " << entries.status().message() << "\n";
      return 1;
    }
    PrintTable(*entries, parsed->Has("full"), std::cout);
  }
  auto verdict = (*ledger)->Verify();
  if (!verdict.ok()) {
    std::cerr << "partner_node ledger: " << verdict.status().message() << "\n";
    return 1;
  }
  if (!verdict->ok) {
    std::cout << "ledger BROKEN: first bad entry " << verdict->first_bad_seq << ": "
              << verdict->reason << " (" << *path << ")\n";
    return pos[0] == "verify" ? 1 : 0;
  }
  if (auto anchors_path = parsed->Get("anchors")) {
    absl::StatusOr<std::string> text = ReadFile(*anchors_path);
    absl::StatusOr<std::vector<LedgerAnchor>> anchors =
        text.ok() ? ParseLedgerAnchors(*text) : text.status();
    absl::StatusOr<std::vector<LedgerEntry>> entries = (*ledger)->Entries();
    if (!anchors.ok() || !entries.ok()) {
      std::cerr << "partner_node ledger: " << *anchors_path << ": "
                << (!anchors.ok() ? anchors.status() : entries.status()).message() << "\n";
      return 1;
    }
    const AnchorVerification checked = VerifyAnchors(*entries, *anchors);
    if (!checked.ok) {
      std::cout << "ledger BROKEN: " << checked.reason << " (" << *path << ")\n";
      return 1;
    }
    std::cout << "ledger anchors OK: " << checked.checked << " anchor(s) from " << *anchors_path
              << "\n";
  }
  std::cout << "ledger OK: " << verdict->entry_count << " entries, head " << verdict->head_hash
            << "\n";
  return 0;
}

}  // namespace fedface::partner
