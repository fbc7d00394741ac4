#include "core/config/tls_key_log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", std::strerror(errno)));
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Copies what gRPC writes into the FIFO to the key log: '\r' and "\r\n" become '\n', and only
// whole lines are appended (one write each batch), so concurrent writers never interleave.
void Relay(int fifo, int out) {
  std::string pending;
  bool after_cr = false;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = read(fifo, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    for (ssize_t i = 0; i < n; ++i) {
      const char c = buffer[i];
      if (c == '\n' && after_cr) {
        after_cr = false;
        continue;
      }
      after_cr = c == '\r';
      pending.push_back(c == '\r' ? '\n' : c);
    }
    const size_t end = pending.rfind('\n');
    if (end == std::string::npos) continue;
    if (!WriteAll(out, pending.data(), end + 1)) return;
    pending.erase(0, end + 1);
  }
}

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

}  // namespace

absl::StatusOr<const TlsKeyLogFile*> TlsKeyLogFile::Open(const std::string& path) {
  static std::mutex mu;
  static auto* open = new std::map<std::string, std::unique_ptr<TlsKeyLogFile>>();
  std::lock_guard<std::mutex> lock(mu);
  std::error_code ec;
  const std::string key = std::filesystem::absolute(path, ec).lexically_normal().string();
  if (auto it = open->find(key); it != open->end()) return it->second.get();

  const int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) return Errno(absl::StrCat("TLS key log ", path));
  // An existing file keeps its content but not a wider mode: the secrets are the owner's alone.
  if (fchmod(out, 0600) != 0) {
    close(out);
    return Errno(absl::StrCat("TLS key log ", path, ": chmod 0600"));
  }
  std::string dir = absl::StrCat(TempRoot(), "/fedface-keylog-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) {
    close(out);
    return Errno(absl::StrCat("TLS key log ", path, ": a private folder for its FIFO"));
  }
  const std::string fifo_path = dir + "/grpc-keylog";
  // O_RDWR: opening never blocks, and the relay never sees end-of-file when gRPC closes it.
  int fifo = -1;
  if (mkfifo(fifo_path.c_str(), 0600) != 0 ||
      (fifo = ::open(fifo_path.c_str(), O_RDWR | O_CLOEXEC)) < 0) {
    absl::Status error = Errno(absl::StrCat("TLS key log ", path, ": FIFO ", fifo_path));
    close(out);
    std::filesystem::remove_all(dir, ec);
    return error;
  }
  std::thread(Relay, fifo, out).detach();
  // The FIFO and its folder go with the process (a killed process leaves an empty FIFO behind).
  static auto* dirs = new std::vector<std::string>();
  if (dirs->empty()) {
    std::atexit([] {
      std::error_code ignored;
      for (const std::string& d : *dirs) std::filesystem::remove_all(d, ignored);
    });
  }
  dirs->push_back(dir);
  auto file = std::unique_ptr<TlsKeyLogFile>(new TlsKeyLogFile(path, fifo_path));
  const TlsKeyLogFile* result = file.get();
  std::cerr << result->Warning() << "\n";
  open->emplace(key, std::move(file));
  return result;
}

std::string TlsKeyLogFile::Warning() const {
  return absl::StrCat("WARNING: TLS session secrets are written to ", path_,
                      " (audit.tls_key_log): whoever can read it and a capture reads this "
                      "process's TLS traffic. Keep it for the audit only, then delete it.");
}

ConfigKey TlsKeyLogConfigKey(const std::string& who) {
  return {.path = "audit.tls_key_log",
          .type = ConfigValueType::kPath,
          .doc = absl::StrCat(
              "AUDIT ONLY. When set, the TLS session secrets of ", who,
              " are appended to this file (NSS key log format, mode 0600) so that a capture of "
              "the mutual-TLS traffic can be decrypted by `partner_node audit --tls-keylog` (or "
              "Wireshark). Off by default; a warning is printed at start when on. The file is "
              "a secret: with it, a capture is plaintext.")};
}

absl::StatusOr<TlsEndpointOptions> TlsEndpointOptionsFor(const std::string& key_log) {
  TlsEndpointOptions options;
  if (key_log.empty()) return options;
  ASSIGN_OR_RETURN(const TlsKeyLogFile* file, TlsKeyLogFile::Open(key_log));
  options.key_log_path = file->grpc_path();
  return options;
}

absl::StatusOr<TlsEndpointOptions> TlsEndpointOptionsFrom(const Config& config) {
  if (!config.IsSet("audit.tls_key_log")) return TlsEndpointOptions{};
  absl::StatusOr<TlsEndpointOptions> options =
      TlsEndpointOptionsFor(config.GetPath("audit.tls_key_log"));
  if (!options.ok()) {
    return absl::Status(
        options.status().code(),
        absl::StrCat(config.source(), ": audit.tls_key_log: ", options.status().message()));
  }
  return options;
}

}  // namespace fedface
