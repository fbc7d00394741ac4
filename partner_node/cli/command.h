// A partner_node subcommand. main.cc lists them; each lives in its own *_command.cc.
#pragma once

#include <string>
#include <vector>

namespace fedface::partner {

// Runs a subcommand with the arguments after its name. Returns the process exit code:
// 0 success, 1 the work failed (message printed), 2 usage error.
using CommandFn = int (*)(const std::vector<std::string>& args);

struct Command {
  const char* name;
  const char* summary;
  CommandFn run;
};

int RunDetect(const std::vector<std::string>& args);
int RunCompare(const std::vector<std::string>& args);
int RunEvaluate(const std::vector<std::string>& args);
int RunLedger(const std::vector<std::string>& args);
int RunAudit(const std::vector<std::string>& args);
int RunModels(const std::vector<std::string>& args);
int RunEnroll(const std::vector<std::string>& args);
int RunLocalApi(const std::vector<std::string>& args);
int RunServe(const std::vector<std::string>& args);
int RunReleases(const std::vector<std::string>& args);
int RunEvaluateRelease(const std::vector<std::string>& args);
int RunState(const std::vector<std::string>& args);

}  // namespace fedface::partner
