// tcpdump writing one pcap file for the audit, optionally inside a network namespace. Settings
// the audit needs: whole packets (-s 0), every packet written at once (-U --immediate-mode), a
// 32 MiB kernel buffer (-B), root kept for writing into the test's folder (-Z root).
//
// Thread safety: one thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/child_process.h"

namespace fedface::testing {

struct CaptureSummary {
  int64_t captured = -1;           // "N packets captured"
  int64_t dropped_by_kernel = -1;  // "N packets dropped by kernel"
  std::string text;                // tcpdump's own words
};

class PacketCapture {
 public:
  // Runs `prefix... tcpdump -i IFACE ... -w PATH FILTER` (prefix: e.g. `ip netns exec NS`; the
  // filter may be empty: every packet) and waits until tcpdump says it is listening.
  // Unavailable, with tcpdump's words, when it cannot capture here.
  static absl::StatusOr<std::unique_ptr<PacketCapture>> Start(
      const std::vector<std::string>& prefix, const std::string& iface, const std::string& path,
      const std::string& filter);
  ~PacketCapture();  // kills tcpdump if it still runs

  // Waits until the file stops growing, stops tcpdump with SIGINT and waits for it.
  absl::StatusOr<CaptureSummary> Stop();

  const std::string& path() const { return path_; }

 private:
  PacketCapture() = default;
  std::unique_ptr<ChildProcess> process_;
  std::string path_;
  std::string log_;
};

// The tcpdump binary found on PATH, or "" when there is none.
std::string TcpdumpBinary();

}  // namespace fedface::testing
