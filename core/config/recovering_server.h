// A gRPC server that comes back after its listener died.
//
// gRPC 1.51's tcp_server_posix stops accepting on a port for good when accept4 fails with
// anything but EAGAIN/ECONNABORTED (EMFILE/ENFILE under a connection flood): it logs
// "Failed accept4: ..." and never re-arms the listener, while the process stays up and every
// later call times out. Newer gRPC retries after a delay; 1.51 does not, so this class watches
// gRPC's log for that line and rebuilds its server on the same address: Shutdown (which closes
// every connection the flood left open), the fd reserve released, BuildAndStart again.
//
// ENSURES: after an accept failure on any listener of the process, every RecoveringServer is
// rebuilt (at most once per kMinRestartInterval; retried until it binds) and logs one line.
// The address is briefly unbound during a rebuild; calls in flight are cancelled.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace fedface {

class RecoveringServer {
 public:
  // Builds and starts a server listening on `listen` (registering services and limits), and
  // sets *port to the bound port (0 for unix sockets); nullptr when it cannot listen.
  using Build = std::function<std::unique_ptr<grpc::Server>(const std::string& listen, int* port)>;

  static constexpr std::chrono::milliseconds kMinRestartInterval{500};

  // Builds the first server. A port of 0 in `listen` is replaced by the bound port for rebuilds.
  // Fails (UNAVAILABLE naming `name` and the address) when the first build cannot listen.
  static absl::StatusOr<std::unique_ptr<RecoveringServer>> Start(std::string name,
                                                                 std::string listen, Build build,
                                                                 std::ostream* log);
  ~RecoveringServer();

  int port() const { return port_; }
  // Stops watching and shuts the server down (calls in flight get until `deadline`).
  void Shutdown(std::chrono::system_clock::time_point deadline);

  // Installs the gRPC log hook (idempotent; Start calls it) and holds the fd reserve: a few
  // descriptors kept open so that a rebuild can run when a flood used every other one.
  static void InstallAcceptFailureHook();
  // Accept failures seen in this process (for tests and logs).
  static uint64_t AcceptFailures();

 private:
  RecoveringServer(std::string name, std::string listen, Build build, std::ostream* log)
      : name_(std::move(name)), listen_(std::move(listen)), build_(std::move(build)), log_(log) {}
  void Watch();
  void Rebuild();

  const std::string name_;
  std::string listen_;
  const Build build_;
  std::ostream* const log_;
  int port_ = 0;
  std::mutex mu_;  // guards server_; taken before State().mu, never inside it
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stopping_{false};
  std::thread watcher_;
};

}  // namespace fedface
