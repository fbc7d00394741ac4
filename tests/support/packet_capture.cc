#include "tests/support/packet_capture.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace fedface::testing {

std::string TcpdumpBinary() {
  // PATH decides (a test removes tcpdump from it to prove that CI then fails); the usual sbin
  // folders only when PATH is unset.
  const char* path = std::getenv("PATH");
  const std::string dirs = path != nullptr ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  for (absl::string_view dir : absl::StrSplit(dirs, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/tcpdump");
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<PacketCapture>> PacketCapture::Start(
    const std::vector<std::string>& prefix, const std::string& iface, const std::string& path,
    const std::string& filter) {
  const std::string tcpdump = TcpdumpBinary();
  if (tcpdump.empty()) return absl::UnavailableError("tcpdump is not installed");
  std::vector<std::string> argv = prefix;
  for (const std::string& a :
       {tcpdump, std::string("-i"), iface, std::string("-s"), std::string("0"), std::string("-U"),
        std::string("--immediate-mode"), std::string("-B"), std::string("32768"), std::string("-Z"),
        std::string("root"), std::string("-w"), path}) {
    argv.push_back(a);
  }
  if (!filter.empty()) argv.push_back(filter);
  std::unique_ptr<PacketCapture> capture(new PacketCapture());
  capture->path_ = path;
  capture->log_ = path + ".tcpdump.log";
  capture->process_ = std::make_unique<ChildProcess>(argv, "/dev/null", capture->log_);
  // tcpdump may be slow to start on a loaded machine: wait until it listens or exits. The limit
  // only catches a hang, and a hang fails the test (INTERNAL); it never skips it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string said = ReadText(capture->log_);
    if (said.find("listening on") != std::string::npos) return capture;
    if (!capture->process_->Running()) {
      return absl::UnavailableError(absl::StrCat("tcpdump cannot capture on ", iface, ": ", said));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::InternalError(
      absl::StrCat("tcpdump did not start listening on ", iface, " within 5 minutes"));
}

PacketCapture::~PacketCapture() {
  if (process_ && process_->Running()) process_->Signal(SIGKILL);
}

absl::StatusOr<CaptureSummary> PacketCapture::Stop() {
  // The file stops growing once tcpdump has written what the kernel handed it.
  off_t last = -1;
  int stable = 0;
  for (int i = 0; i < 100 && stable < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    struct stat st {};
    const off_t size = stat(path_.c_str(), &st) == 0 ? st.st_size : -1;
    stable = size == last ? stable + 1 : 0;
    last = size;
  }
  process_->Signal(SIGINT);
  const int code = process_->Wait(absl::Seconds(30));
  CaptureSummary summary;
  summary.text = ReadText(log_);
  if (code != 0) {
    return absl::InternalError(absl::StrCat("tcpdump ended with ", code, ": ", summary.text));
  }
  std::smatch m;
  static const std::regex kCaptured("([0-9]+) packets? captured");
  static const std::regex kDropped("([0-9]+) packets? dropped by kernel");
  if (std::regex_search(summary.text, m, kCaptured)) summary.captured = std::stoll(m[1]);
  if (std::regex_search(summary.text, m, kDropped)) summary.dropped_by_kernel = std::stoll(m[1]);
  return summary;
}

}  // namespace fedface::testing
