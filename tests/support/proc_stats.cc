#include "tests/support/proc_stats.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fedface::testing {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

int64_t StatusKib(pid_t pid, const char* field) {
  const std::string status = Read("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find(field);
  if (at == std::string::npos) return -1;
  return std::stoll(status.substr(at + std::char_traits<char>::length(field)));
}

}  // namespace

int64_t PeakRssKib(pid_t pid) { return StatusKib(pid, "VmHWM:"); }
int64_t RssKib(pid_t pid) { return StatusKib(pid, "VmRSS:"); }

int OpenFiles(pid_t pid) {
  std::error_code ec;
  int n = 0;
  auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return -1;
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) return -1;
    ++n;
  }
  return n;
}

double CpuSeconds(pid_t pid) {
  const std::string stat = Read("/proc/" + std::to_string(pid) + "/stat");
  // Fields after the command name (which may hold spaces) start past the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;  // state .. cmajflt (fields 3-13)
  long long utime = 0, stime = 0;
  if (!(fields >> utime >> stime)) return -1;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace fedface::testing
