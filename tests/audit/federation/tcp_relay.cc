#include "tests/audit/federation/tcp_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "tests/audit/federation/audit_network.h"

namespace fedface::audit_test {
namespace {

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// One relayed connection: fds[0] the accepted client, fds[1] the connection to the target;
// open[i]: fds[i] may still deliver bytes.
struct Pair {
  int fds[2];
  bool open[2];
};

}  // namespace

absl::StatusOr<std::unique_ptr<TcpRelay>> TcpRelay::Start(const std::string& ns,
                                                          const std::string& target_ip,
                                                          int target_port) {
  std::unique_ptr<TcpRelay> relay(new TcpRelay());
  relay->target_ip_ = target_ip;
  relay->target_port_ = target_port;
  if (pipe(relay->wake_fds_) != 0) return absl::InternalError("pipe failed");
  std::promise<absl::StatusOr<int>> bound;
  std::future<absl::StatusOr<int>> bound_future = bound.get_future();
  TcpRelay* self = relay.get();
  relay->thread_ = std::thread([self, ns, bound = std::move(bound)]() mutable {
    if (absl::Status s = JoinNamespaceOnThisThread(ns); !s.ok()) {
      bound.set_value(s);
      return;
    }
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd, 16) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      bound.set_value(absl::UnavailableError(
          absl::StrCat("relay cannot listen on 127.0.0.1: ", std::strerror(errno))));
      if (fd >= 0) close(fd);
      return;
    }
    bound.set_value(static_cast<int>(ntohs(addr.sin_port)));
    self->Run(fd);
  });
  ASSIGN_OR_RETURN(int port, bound_future.get());  // the thread has returned; ~TcpRelay joins it
  relay->port_ = port;
  return relay;
}

TcpRelay::~TcpRelay() {
  if (wake_fds_[1] >= 0) {
    const char stop = 's';
    (void)!write(wake_fds_[1], &stop, 1);
  }
  if (thread_.joinable()) thread_.join();
  for (int fd : wake_fds_) {
    if (fd >= 0) close(fd);
  }
}

void TcpRelay::Run(int listen_fd) {
  std::vector<Pair> pairs;
  std::vector<char> buffer(64 << 10);
  while (true) {
    std::vector<pollfd> fds = {{wake_fds_[0], POLLIN, 0}, {listen_fd, POLLIN, 0}};
    std::vector<std::pair<size_t, int>> where;  // poll index -> (pair, side)
    for (size_t p = 0; p < pairs.size(); ++p) {
      for (int side = 0; side < 2; ++side) {
        if (!pairs[p].open[side]) continue;
        fds.push_back({pairs[p].fds[side], POLLIN, 0});
        where.emplace_back(p, side);
      }
    }
    if (poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (fds[1].revents & POLLIN) {
      const int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        const int target = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(target_port_));
        inet_pton(AF_INET, target_ip_.c_str(), &addr.sin_addr);
        if (target >= 0 && connect(target, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
          pairs.push_back({{client, target}, {true, true}});
        } else {
          close(client);  // the caller sees a refused / reset connection, as it would directly
          if (target >= 0) close(target);
        }
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      Pair& pair = pairs[where[i - 2].first];
      const int side = where[i - 2].second;
      const ssize_t n = recv(pair.fds[side], buffer.data(), buffer.size(), 0);
      if (n > 0 && WriteAll(pair.fds[1 - side], buffer.data(), static_cast<size_t>(n))) continue;
      if (n < 0 && errno == EINTR) continue;
      // EOF (or an error): pass the half-close on; the pair ends when both sides are done.
      pair.open[side] = false;
      shutdown(pair.fds[1 - side], SHUT_WR);
      if (n < 0) pair.open[1 - side] = false;
    }
    for (size_t p = 0; p < pairs.size();) {
      if (!pairs[p].open[0] && !pairs[p].open[1]) {
        close(pairs[p].fds[0]);
        close(pairs[p].fds[1]);
        pairs.erase(pairs.begin() + static_cast<long>(p));
      } else {
        ++p;
      }
    }
  }
  for (const Pair& p : pairs) {
    close(p.fds[0]);
    close(p.fds[1]);
  }
  close(listen_fd);
}

}  // namespace fedface::audit_test
