// Runs a program as a real child process and captures what it printed.
#pragma once

#include <string>
#include <vector>

namespace fedface::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or not started
  std::string out;
  std::string err;
};

// Runs argv[0] with the arguments (no shell), waits for it, and returns its exit code and both
// output streams. Extra environment entries ("NAME=value") are added to the parent's.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extra_env = {});

}  // namespace fedface::testing
