#include "partner_node/audit/tls_key_log.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface::partner::audit {
namespace {

constexpr uint64_t kMaxKeyLogBytes = uint64_t{256} << 20;

bool IsHex(absl::string_view text) {
  if (text.empty() || text.size() % 2 != 0) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string NormalizeKeyLogLineEndings(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

absl::Status TlsKeyLog::Add(std::string_view text, const std::string& source) {
  const std::string normalized = NormalizeKeyLogLineEndings(text);
  int line_number = 0;
  for (absl::string_view raw : absl::StrSplit(normalized, '\n')) {
    ++line_number;
    const absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.size() != 3 || fields[1].size() != 64 || !IsHex(fields[1]) || !IsHex(fields[2])) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ":", line_number, ": not a key log entry (LABEL <64 hex digits> <hex secret>)"));
    }
    secrets_[absl::HexStringToBytes(fields[1])][std::string(fields[0])] =
        absl::HexStringToBytes(fields[2]);
    ++entries_;
  }
  return absl::OkStatus();
}

absl::StatusOr<TlsKeyLog> TlsKeyLog::Load(const std::vector<std::string>& paths) {
  TlsKeyLog log;
  for (const std::string& path : paths) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxKeyLogBytes));
    RETURN_IF_ERROR(log.Add(text, path));
  }
  return log;
}

const std::string* TlsKeyLog::Find(std::string_view client_random, std::string_view label) const {
  auto session = secrets_.find(client_random);
  if (session == secrets_.end()) return nullptr;
  auto secret = session->second.find(label);
  return secret == session->second.end() ? nullptr : &secret->second;
}

}  // namespace fedface::partner::audit
