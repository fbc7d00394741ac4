// The TLS key log a process writes when its configuration asks for one (`audit.tls_key_log`):
// the session secrets of every TLS connection it opens or accepts, in the NSS key log format,
// so that the partner's security officer can decrypt a capture of production traffic
// (`partner_node audit --tls-keylog FILE`).
//
// gRPC 1.51 writes the secrets itself (TlsCredentialsOptions::set_tls_session_key_log_file_path)
// with three traps: it opens the path with "w+" (a restart, or a new channel when no other is
// alive, truncates what was logged), it ends each line with a bare '\r', and it creates the
// file 0644 unless the umask says otherwise. So gRPC is never given the key log itself: it gets
// a FIFO in a private 0700 folder, and a thread of this process appends what arrives there to
// the key log, opened O_APPEND and mode 0600, with '\n' line ends, one whole line per write (so
// several processes, e.g. the vendor's registry and its coordinator, may share one key log).
//
// One TlsKeyLogFile per key log path and process (Open returns the same one), alive until the
// process ends. The key log is a secret: whoever holds it and a capture reads the traffic.
//
// Thread safety: Open is thread-safe; the object is immutable.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/config/config_schema.h"
#include "core/config/tls_credentials.h"

namespace fedface {

// `audit.tls_key_log`, declared by both configurations (partner and vendor); `who` names the
// process's TLS endpoints in the key's documentation.
ConfigKey TlsKeyLogConfigKey(const std::string& who);

// The TLS options of `config`'s endpoints: key logging when audit.tls_key_log is set (the key
// log is opened, and the warning printed on stderr, once per process), else none.
absl::StatusOr<TlsEndpointOptions> TlsEndpointOptionsFrom(const Config& config);
// The same for a key log path given directly ("" = off).
absl::StatusOr<TlsEndpointOptions> TlsEndpointOptionsFor(const std::string& key_log);

class TlsKeyLogFile {
 public:
  // Creates (or appends to) `path` with mode 0600 and starts the relay. Fails naming the path
  // when it cannot be opened, or the FIFO cannot be made.
  static absl::StatusOr<const TlsKeyLogFile*> Open(const std::string& path);

  const std::string& path() const { return path_; }
  // What to pass as TlsEndpointOptions::key_log_path.
  const std::string& grpc_path() const { return fifo_path_; }
  // The warning line a process prints at start when key logging is on.
  std::string Warning() const;

 private:
  TlsKeyLogFile(std::string path, std::string fifo_path)
      : path_(std::move(path)), fifo_path_(std::move(fifo_path)) {}

  const std::string path_;
  const std::string fifo_path_;
};

}  // namespace fedface
