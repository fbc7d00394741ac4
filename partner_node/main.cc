// partner_node: everything a partner runs on its own machines.
#include <sys/stat.h>

#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/common/blas_info.h"
#include "core/config/server_limits.h"
#include "partner_node/cli/command.h"

namespace {

using fedface::partner::Command;

constexpr Command kCommands[] = {
    {"detect", "find faces and 68 landmarks in images", fedface::partner::RunDetect},
    {"compare", "distance and match decision between the largest faces of two images",
     fedface::partner::RunCompare},
    {"evaluate", "verification report over a labelled pair list or a gallery folder",
     fedface::partner::RunEvaluate},
    {"ledger", "show or verify the egress ledger of messages sent to vendors",
     fedface::partner::RunLedger},
    {"audit", "check packet captures: nothing but allowlisted, ledgered gRPC messages left",
     fedface::partner::RunAudit},
    {"models", "pull, list and activate verified model versions (model cache)",
     fedface::partner::RunModels},
    {"enroll", "enrol a gallery folder DIR/<subject>/<images> incrementally (gallery store)",
     fedface::partner::RunEnroll},
    {"local-api", "serve only the local match API (enrol, verify, identify) on local_api.listen",
     fedface::partner::RunLocalApi},
    {"serve", "run the vendor-facing evaluation service and the local match API",
     fedface::partner::RunServe},
    {"releases", "list, show, approve or decline releases held for approval",
     fedface::partner::RunReleases},
    {"evaluate-release", "preview the release a vendor round would receive (nothing sent)",
     fedface::partner::RunEvaluateRelease},
    {"state", "show, back up or restore the partner's state (gallery, ledger, budget, models)",
     fedface::partner::RunState},
};

void PrintUsage(std::ostream& out) {
  out << "usage: partner_node COMMAND [flags]   (partner_node COMMAND --help for its flags)\n\n";
  for (const Command& c : kCommands) out << "  " << c.name << "\t" << c.summary << "\n";
  out << "\n  --version\tversion and the BLAS library in use\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Every file and folder the partner creates (gallery, ledger, budget, model cache, held
  // releases, logs, sockets) is its owner's alone, whatever umask the caller had.
  umask(077);
  // Listeners must not run out of descriptors at the default soft limit under a connection burst.
  if (absl::StatusOr<uint64_t> nofile = fedface::RaiseOpenFileLimit(); !nofile.ok()) {
    std::cerr << "partner_node: warning: " << nofile.status().message() << "\n";
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    PrintUsage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "partner_node " << FEDFACE_VERSION
              << "\nBLAS: " << fedface::LoadedBlasDescription() << "\n";
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (std::string(argv[1]) == c.name) return c.run(args);
  }
  std::cerr << "partner_node: unknown command '" << argv[1] << "'\n";
  PrintUsage(std::cerr);
  return 2;
}
