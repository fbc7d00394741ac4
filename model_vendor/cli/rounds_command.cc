// `model_vendor rounds list --config FILE`,
// `model_vendor rounds show ID --config FILE [--out DIR] [--json]` and
// `model_vendor rounds anchors PARTNER --config FILE`: the rounds recorded in
// coordinator.rounds_db, readable after any restart; `show` recomputes the report from the
// stored releases (and writes the report files again with --out); `anchors` prints the ledger
// anchors of a partner's releases for `partner_node ledger verify --anchors`.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/cli_args.h"
#include "core/common/proto_bytes.h"
#include "core/common/sha256.h"
#include "core/config/config_file.h"
#include "model_vendor/cli/command.h"
#include "model_vendor/coordinator/coordinator_files.h"
#include "model_vendor/coordinator/report_json.h"
#include "model_vendor/coordinator/round_settings.h"
#include "model_vendor/coordinator/rounds_store.h"
#include "model_vendor/cli/vendor_config.h"

namespace fedface::vendor {
namespace {

void PrintRoundsHelp(std::ostream& out) {
  out << "usage: model_vendor rounds list --config FILE\n"
         "       model_vendor rounds show ID --config FILE [--out DIR] [--json]\n"
         "       model_vendor rounds anchors PARTNER --config FILE\n\n"
         "Reads the rounds database (coordinator.rounds_db of the vendor's configuration).\n"
         "  list          every round, newest first: id, start, model, protocol, state,\n"
         "                partners that contributed / asked, quorum, runs\n"
         "  show ID       the round's report table, recomputed from the stored releases\n"
         "  --out DIR     (show) also write DIR/report.json and DIR/report.html\n"
         "  --json        (show) print report.json instead of the table\n"
         "  anchors PARTNER  one line per release received from PARTNER: the ledger head it\n"
         "                extended, the sha256 of its bytes and the round id; give the output\n"
         "                to the partner's `partner_node ledger verify --anchors FILE`, which\n"
         "                then detects entries removed from the end of its ledger\n"
         "  --help        this text\n";
}

int List(RoundsStore& store) {
  absl::StatusOr<std::vector<RoundSummary>> rounds = store.List();
  if (!rounds.ok()) {
    std::cerr << "model_vendor rounds list: " << rounds.status().message() << "\n";
    return 1;
  }
  if (rounds->empty()) {
    std::cout << "no rounds recorded in " << store.path() << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ROUND", "STARTED", "MODEL", "PROTOCOL", "STATE", "CONTRIBUTED", "RUNS"}};
  for (const RoundSummary& r : *rounds) {
    rows.push_back({r.round_id, r.started_at, r.model_version, r.protocol, r.state,
                    absl::StrCat(r.contributed, "/", r.partners, " (quorum ", r.quorum, ")"),
                    absl::StrCat(r.runs)});
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  return 0;
}

int Show(RoundsStore& store, const std::string& id, const CliArgs& cli) {
  absl::StatusOr<std::optional<RoundRecord>> record = store.Load(id);
  if (!record.ok()) {
    std::cerr << "model_vendor rounds show: " << record.status().message() << "\n";
    return 1;
  }
  if (!record->has_value()) {
    std::cerr << "model_vendor rounds show: no round " << id << " in " << store.path() << "\n";
    return 1;
  }
  const RoundReport report = BuildRoundReport(**record);
  if (cli.Has("json")) {
    std::cout << RoundReportJson(report);
  } else {
    std::cout << RoundReportTableText(report);
  }
  if (cli.Has("out")) {
    const std::string dir = *cli.Get("out");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    absl::StatusOr<ReportFiles> files = WriteReportFiles(report, dir);
    if (!files.ok()) {
      std::cerr << "model_vendor rounds show: " << files.status().message() << "\n";
      return 1;
    }
    std::cerr << "model_vendor rounds show: wrote " << files->json_path << " and "
              << files->html_path << "\n";
  }
  return 0;
}

// Format: "HEAD_SEQ HEAD_HASH RELEASE_SHA256 ROUND_ID" (partner_node/egress/ledger_anchors.h).
int Anchors(RoundsStore& store, const std::string& partner) {
  absl::StatusOr<std::vector<RoundSummary>> rounds = store.List();
  if (!rounds.ok()) {
    std::cerr << "model_vendor rounds anchors: " << rounds.status().message() << "\n";
    return 1;
  }
  std::cout << "# ledger anchors of partner " << partner << " from " << store.path() << "\n";
  int printed = 0;
  for (auto it = rounds->rbegin(); it != rounds->rend(); ++it) {  // oldest first
    absl::StatusOr<std::optional<RoundRecord>> record = store.Load(it->round_id);
    if (!record.ok() || !record->has_value()) {
      std::cerr << "model_vendor rounds anchors: round " << it->round_id << ": "
                << (record.ok() ? "gone" : record.status().message()) << "\n";
      return 1;
    }
    for (const PartnerOutcome& o : (*record)->outcomes) {
      if (o.partner.name != partner || !o.release || !o.release->has_ledger_head()) continue;
      const std::string bytes = SerializeDeterministically(*o.release);
      std::cout << o.release->ledger_head().seq() << " " << o.release->ledger_head().entry_hash()
                << " " << Sha256Hex(bytes) << " " << it->round_id << "\n";
      ++printed;
    }
  }
  std::cerr << "model_vendor rounds anchors: " << printed << " anchor(s) for " << partner << "\n";
  return 0;
}

}  // namespace

int RunRounds(const std::vector<std::string>& args) {
  absl::StatusOr<CliArgs> cli = CliArgs::Parse(args, {"config", "out"}, {"help", "json"});
  if (!cli.ok()) {
    std::cerr << "model_vendor rounds: " << cli.status().message() << "\n";
    return 2;
  }
  if (cli->Has("help")) {
    PrintRoundsHelp(std::cout);
    return 0;
  }
  const std::vector<std::string>& pos = cli->positionals();
  const bool list = pos.size() == 1 && pos[0] == "list";
  const bool show = pos.size() == 2 && pos[0] == "show";
  const bool anchors = pos.size() == 2 && pos[0] == "anchors";
  if (!list && !show && !anchors) {
    std::cerr << "model_vendor rounds: expected 'list', 'show ID' or 'anchors PARTNER' (see "
                 "--help)\n";
    return 2;
  }
  if (!cli->Has("config")) {
    std::cerr << "model_vendor rounds: --config is required (see --help)\n";
    return 2;
  }
  if (!show && (cli->Has("out") || cli->Has("json"))) {
    std::cerr << "model_vendor rounds: --out and --json belong to 'show'\n";
    return 2;
  }
  if (show) {
    if (absl::Status s = CheckRoundId(pos[1]); !s.ok()) {
      std::cerr << "model_vendor rounds show: " << s.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<Config> config = Config::Load(*cli->Get("config"), VendorConfigSchema());
  if (!config.ok()) {
    std::cerr << "model_vendor rounds: " << config.status().message() << "\n";
    return 1;
  }
  const std::string db = RoundsDatabasePath(*config);
  if (!std::filesystem::exists(db)) {
    if (!show) {
      std::cout << "no rounds recorded in " << db << "\n";
      return 0;
    }
    std::cerr << "model_vendor rounds show: no round " << pos[1] << ": " << db
              << " does not exist\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<RoundsStore>> store = RoundsStore::Open(db);
  if (!store.ok()) {
    std::cerr << "model_vendor rounds: " << store.status().message() << "\n";
    return 1;
  }
  if (anchors) return Anchors(**store, pos[1]);
  return list ? List(**store) : Show(**store, pos[1], *cli);
}

}  // namespace fedface::vendor
