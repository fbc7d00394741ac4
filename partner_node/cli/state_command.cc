// `partner_node state backup|restore|show --config FILE`: the partner's state (gallery, egress
// ledger, privacy budget, held releases, evaluation stores, model cache) for an operator.
#include <iostream>
#include <string>
#include <vector>

#include "core/common/cli_args.h"
#include "core/config/config_file.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/state/state_backup.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node state show    --config FILE\n"
    "       partner_node state backup  --config FILE --to DIR\n"
    "       partner_node state restore --config FILE --from DIR [--force]\n"
    "\n"
    "The partner's state: the gallery store (embeddings of faces), the egress ledger, the\n"
    "privacy budget, held releases, the evaluation stores and the model cache.\n"
    "\n"
    "  show     print the gallery's subjects and images, the ledger's head and the budget spent\n"
    "  backup   copy the state into DIR (new or empty; made 0700, files 0600), consistently while\n"
    "           serve or enroll run (SQLite's online backup), with the configuration and the\n"
    "           files it names, and DIR/manifest.json (sha256 of every file, the ledger head).\n"
    "           The backup holds embeddings of faces: store it as the gallery itself.\n"
    "  restore  check every file of DIR against its manifest, then put the stores and the model\n"
    "           cache where FILE says; refuses when state exists there (unless --force) or a\n"
    "           process has a store open, and nothing is written when a file is damaged. Then\n"
    "           verifies the restored ledger's chain and its head. The configuration files in\n"
    "           DIR/config/ are not placed: put them back yourself when the machine is new.\n"
    "\n"
    "  --config FILE  the partner_node configuration (its paths name the state)\n"
    "  --to DIR       backup: the folder to create\n"
    "  --from DIR     restore: a folder `state backup` made\n"
    "  --force        restore: replace existing state (stop the node first)\n";

}  // namespace

int RunState(const std::vector<std::string>& args) {
  auto parsed = CliArgs::Parse(args, {"config", "to", "from"}, {"force", "help"});
  if (!parsed.ok()) {
    std::cerr << "partner_node state: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  if (parsed->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  const auto& pos = parsed->positionals();
  const std::string verb = pos.size() == 1 ? pos[0] : "";
  const bool usage_ok =
      parsed->Has("config") && ((verb == "show" && !parsed->Has("to") && !parsed->Has("from")) ||
                                (verb == "backup" && parsed->Has("to") && !parsed->Has("from")) ||
                                (verb == "restore" && parsed->Has("from") && !parsed->Has("to")));
  if (!usage_ok || (parsed->Has("force") && verb != "restore")) {
    std::cerr << "partner_node state: expected show, backup --to DIR or restore --from DIR, "
                 "with --config FILE\n"
              << kUsage;
    return 2;
  }
  const std::string config_path = *parsed->Get("config");
  absl::StatusOr<Config> config = Config::Load(config_path, PartnerConfigSchema());
  if (!config.ok()) {
    std::cerr << "partner_node state: " << config.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<StateFigures> figures =
      verb == "show"     ? ReadFigures(*config)
      : verb == "backup" ? BackupState(*config, config_path, *parsed->Get("to"))
                         : RestoreState(*config, *parsed->Get("from"), parsed->Has("force"));
  if (!figures.ok()) {
    std::cerr << "partner_node state " << verb << ": " << figures.status().message() << "\n";
    return 1;
  }
  if (verb == "backup") std::cout << "backed up to " << *parsed->Get("to") << "\n";
  if (verb == "restore") {
    std::cout << "restored from " << *parsed->Get("from") << "; ledger chain verified\n";
  }
  std::cout << FormatFigures(*figures) << "\n";
  return 0;
}

}  // namespace fedface::partner
