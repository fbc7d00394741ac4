#include "core/config/recovering_server.h"

#include <fcntl.h>
#include <grpc/support/log.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace fedface {
namespace {

// Descriptors held back for a rebuild (gRPC needs a few: the socket, epoll, eventfds).
constexpr int kFdReserve = 16;
constexpr char kAcceptFailed[] = "Failed accept4";

struct Shared {
  std::mutex mu;
  std::condition_variable changed;
  uint64_t accept_failures = 0;
  bool hook_installed = false;
  std::vector<int> reserve;
};

Shared& State() {
  static Shared* state = new Shared;  // never destroyed: gRPC may log during exit
  return *state;
}

void FillReserve(std::vector<int>& reserve) {
  while (reserve.size() < kFdReserve) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;  // refilled at the next rebuild
    reserve.push_back(fd);
  }
}

// gRPC's own format (severity letter, time, file:line), plus the accept-failure signal.
void LogHook(gpr_log_func_args* args) {
  const char* file = args->file ? args->file : "";
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  std::cerr << absl::StrFormat(
      "%s%s %s:%d] %s\n", gpr_log_severity_string(args->severity),
      absl::FormatTime("%m%d %H:%M:%E6S", absl::Now(), absl::LocalTimeZone()), file, args->line,
      args->message ? args->message : "");
  if (args->message != nullptr && std::strstr(args->message, kAcceptFailed) != nullptr) {
    Shared& s = State();
    std::lock_guard<std::mutex> lock(s.mu);
    ++s.accept_failures;
    s.changed.notify_all();
  }
}

}  // namespace

void RecoveringServer::InstallAcceptFailureHook() {
  Shared& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.hook_installed) return;
  s.hook_installed = true;
  FillReserve(s.reserve);
  gpr_set_log_function(LogHook);
}

uint64_t RecoveringServer::AcceptFailures() {
  Shared& s = State();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.accept_failures;
}

absl::StatusOr<std::unique_ptr<RecoveringServer>> RecoveringServer::Start(std::string name,
                                                                          std::string listen,
                                                                          Build build,
                                                                          std::ostream* log) {
  InstallAcceptFailureHook();
  std::unique_ptr<RecoveringServer> out(
      new RecoveringServer(std::move(name), std::move(listen), std::move(build), log));
  out->server_ = out->build_(out->listen_, &out->port_);
  if (out->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", out->name_, " ", out->listen_, " (address in use?)"));
  }
  // Rebuilds must bind the port the first build chose.
  if (out->port_ > 0 && out->listen_.size() >= 2 &&
      out->listen_.compare(out->listen_.size() - 2, 2, ":0") == 0) {
    out->listen_ = absl::StrCat(out->listen_.substr(0, out->listen_.size() - 1), out->port_);
  }
  out->watcher_ = std::thread([raw = out.get()] { raw->Watch(); });
  return out;
}

RecoveringServer::~RecoveringServer() {
  Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

void RecoveringServer::Shutdown(std::chrono::system_clock::time_point deadline) {
  {
    Shared& s = State();
    std::lock_guard<std::mutex> lock(s.mu);
    if (stopping_.exchange(true)) return;
    s.changed.notify_all();
  }
  if (watcher_.joinable()) watcher_.join();
  std::lock_guard<std::mutex> own(mu_);
  if (server_) server_->Shutdown(deadline);
}

void RecoveringServer::Watch() {
  Shared& s = State();
  std::unique_lock<std::mutex> lock(s.mu);
  uint64_t seen = s.accept_failures;
  auto stopping = [this] { return stopping_.load(); };
  while (true) {
    s.changed.wait(lock, [&] { return s.accept_failures != seen || stopping(); });
    if (stopping()) return;
    // Throttled: a flood that keeps the descriptors used up costs one rebuild per interval.
    s.changed.wait_for(lock, kMinRestartInterval, [&] { return stopping(); });
    if (stopping()) return;
    seen = s.accept_failures;
    lock.unlock();
    Rebuild();
    lock.lock();
  }
}

void RecoveringServer::Rebuild() {
  Shared& s = State();
  std::lock_guard<std::mutex> own(mu_);
  if (stopping_) return;
  const absl::Time start = absl::Now();
  // Shutdown closes the connections the flood left open; the reserve covers the new listener.
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_.reset();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    for (int fd : s.reserve) close(fd);
    s.reserve.clear();
  }
  int attempts = 0;
  for (; server_ == nullptr && !stopping_; ++attempts) {
    int port = 0;
    server_ = build_(listen_, &port);
    if (server_ == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    FillReserve(s.reserve);
  }
  if (log_ != nullptr) {
    *log_ << absl::StrFormat(
        "%s: listener %s restarted after gRPC stopped accepting (accept4 failed; descriptors "
        "exhausted?) in %.0f ms, %d attempt(s)\n",
        name_, listen_, absl::ToDoubleMilliseconds(absl::Now() - start), attempts);
    log_->flush();
  }
}

}  // namespace fedface
