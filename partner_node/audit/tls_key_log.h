// Reading TLS session secrets in the NSS key log format, for the traffic audit:
//   LABEL <client_random, 64 hex digits> <secret, hex>
// one entry a line, '#' comments. gRPC 1.51 ends its lines with a bare '\r' (tshark then reads
// only the first entry): '\n', "\r\n" and '\r' are all accepted here, and
// NormalizeKeyLogLineEndings rewrites a file for tools that need '\n'.
//
// Thread safety: immutable after loading.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface::partner::audit {

class TlsKeyLog {
 public:
  // Reads and merges the files (the partner's server and client logs, the vendor's, ...). Fails
  // naming the file and line of the first malformed entry, or a file that cannot be read.
  static absl::StatusOr<TlsKeyLog> Load(const std::vector<std::string>& paths);
  // Adds the entries of `text`; `source` names it in errors.
  absl::Status Add(std::string_view text, const std::string& source);

  // The secret (raw bytes) logged under `label` (e.g. "SERVER_TRAFFIC_SECRET_0") for the session
  // whose ClientHello.random is `client_random` (32 raw bytes); nullptr when there is none.
  const std::string* Find(std::string_view client_random, std::string_view label) const;

  size_t sessions() const { return secrets_.size(); }
  size_t entries() const { return entries_; }

 private:
  // client_random -> label -> secret
  std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> secrets_;
  size_t entries_ = 0;
};

// The same text with every line ended by '\n' (bare '\r' and "\r\n" rewritten).
std::string NormalizeKeyLogLineEndings(std::string_view text);

}  // namespace fedface::partner::audit
