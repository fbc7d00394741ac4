// Real child processes for the tests: one that runs in the background with its
// output in files (servers, long commands a test kills at a point the child
// reports), and one run to completion. The only subprocess helper of the test
// suite.
//
// Thread safety: a ChildProcess belongs to one thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace fedface::testing {

// A child process with stdout/stderr redirected to files (stdin from
// /dev/null). SIGKILLed and reaped when destroyed if it still runs.
class ChildProcess {
 public:
  // Starts argv[0] (a path; no PATH lookup, no shell). pid() is -1 when it
  // could not start.
  ChildProcess(const std::vector<std::string>& argv, const std::string& stdout_path,
               const std::string& stderr_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Waits for the exit; returns the exit code, 128+signal when killed, -1 on
  // timeout (the process is then killed) or when it never started.
  int Wait(absl::Duration timeout);
  void Signal(int signal_number);
  // SIGKILL, then reap.
  void Kill9();

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

struct ProcessResult {
  int exit_code = -1;  // 128+signal when killed; -1 when it did not start or hung
  std::string out;
  std::string err;
};

// Runs argv to completion and returns its exit code and both outputs. The
// outputs are kept as work_dir/run-PID-N.{out,err} (artefacts) or, when
// work_dir is "", in removed temporary files. A child still running after
// `timeout` is killed (exit_code -1): a hang fails the test instead of stalling
// the suite; the limit is far above any expected run, never a guess of machine
// speed.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& work_dir = "",
                         absl::Duration timeout = absl::Minutes(15));

std::string ReadText(const std::string& path);  // "" when absent
void WriteText(const std::string& path, const std::string& text);

}  // namespace fedface::testing
