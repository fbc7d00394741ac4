// A model_vendor subcommand. main.cc lists them; each lives in its own *_command.cc.
#pragma once

#include <string>
#include <vector>

namespace fedface::vendor {

// Runs a subcommand with the arguments after its name. Returns the process exit code:
// 0 success, 1 the work failed (message printed), 2 usage error.
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

int RunKeygen(const std::vector<std::string>& args);
int RunPackage(const std::vector<std::string>& args);
int RunServe(const std::vector<std::string>& args);
int RunRound(const std::vector<std::string>& args);
int RunRounds(const std::vector<std::string>& args);

}  // namespace fedface::vendor
