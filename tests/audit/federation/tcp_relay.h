// A TCP relay on the vendor's side of the audit network: accepts on 127.0.0.1 (in the vendor's
// namespace) and forwards each connection, byte for byte in both directions, to a partner's
// vendor-facing address. The vendor's coordinator refuses `--plaintext` to any address that is
// not loopback; the relay lets it reach a partner in another namespace over the audited veth
// link while keeping that rule. Half-closes are passed on, so captures show clean FINs.
//
// Thread safety: one thread of its own (which joins the namespace); Start/port/~ from one thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace fedface::audit_test {

class TcpRelay {
 public:
  // Listens on 127.0.0.1 with a free port inside network namespace `ns` ("" = the caller's).
  static absl::StatusOr<std::unique_ptr<TcpRelay>> Start(const std::string& ns,
                                                         const std::string& target_ip,
                                                         int target_port);
  ~TcpRelay();  // stops the thread and closes every connection
  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  int port() const { return port_; }

 private:
  TcpRelay() = default;
  void Run(int listen_fd);

  std::string target_ip_;
  int target_port_ = 0;
  int port_ = 0;
  int wake_fds_[2] = {-1, -1};
  std::thread thread_;
};

}  // namespace fedface::audit_test
