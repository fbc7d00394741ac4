// model_vendor package: face-api tfjs weights -> signed fedface model package.
#include <iostream>

#include "core/common/cli_args.h"
#include "model_vendor/command.h"

namespace fedface::vendor {

int RunPackage(const std::vector<std::string>& args) {
  std::cerr << "model_vendor package: not built yet\n";
  return 1;
}

}  // namespace fedface::vendor
