// model_vendor: the vendor's tools: keys, packages, registry, coordinator.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "core/common/blas_info.h"
#include "core/config/server_limits.h"
#include "model_vendor/cli/command.h"

namespace {

using fedface::vendor::Command;

constexpr Command kCommands[] = {
    {"keygen", "make the vendor's Ed25519 signing key pair", fedface::vendor::RunKeygen},
    {"package", "convert face-api weights into a signed model package",
     fedface::vendor::RunPackage},
    {"serve", "serve the model registry to allowlisted partners (mutual TLS)",
     fedface::vendor::RunServe},
    {"round", "run an evaluation round across partners and write the pooled report",
     fedface::vendor::RunRound},
    {"rounds", "list recorded rounds or show one (rounds list | rounds show ID)",
     fedface::vendor::RunRounds},
};

void PrintUsage(std::ostream& out) {
  out << "usage: model_vendor COMMAND [flags]   (model_vendor COMMAND --help for its flags)\n\n";
  for (const Command& c : kCommands) out << "  " << c.name << "\t" << c.summary << "\n";
  out << "\n  --version\tversion and the BLAS library in use\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Listeners must not run out of descriptors at the default soft limit under a connection burst.
  if (absl::StatusOr<uint64_t> nofile = fedface::RaiseOpenFileLimit(); !nofile.ok()) {
    std::cerr << "model_vendor: warning: " << nofile.status().message() << "\n";
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    PrintUsage(argc < 2 ? std::cerr : std::cout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::cout << "model_vendor " << FEDFACE_VERSION
              << "\nBLAS: " << fedface::LoadedBlasDescription() << "\n";
    return 0;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (std::string(argv[1]) == c.name) return c.run(args);
  }
  std::cerr << "model_vendor: unknown command '" << argv[1] << "'\n";
  PrintUsage(std::cerr);
  return 2;
}
