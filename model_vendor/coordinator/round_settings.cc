#include "model_vendor/coordinator/round_settings.h"

#include <openssl/rand.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "core/common/sha256.h"

namespace fedface::vendor {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// host:port with a numeric port 1..65535; [v6]:port accepted. Returns the host or "" when bad.
std::string HostOf(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return "";
  const std::string port = address.substr(colon + 1);
  if (port.size() > 5) return "";
  long value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return "";
    value = value * 10 + (c - '0');
  }
  if (value < 1 || value > 65535) return "";
  std::string host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return "";
    host = host.substr(1, host.size() - 2);
  }
  for (char c : host) {
    if (c <= ' ' || c == '/' || c == '@') return "";
  }
  return host;
}

}  // namespace

absl::StatusOr<PartnerEndpoint> ParsePartnerEntry(const std::string& entry) {
  const std::vector<std::string> fields =
      absl::StrSplit(entry, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  const auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("coordinator.partners entry '", entry, "': ", why,
                     " (expected 'NAME HOST:PORT [CERTIFICATE_NAME]')"));
  };
  if (fields.size() < 2 || fields.size() > 3) {
    return bad(absl::StrCat(fields.size(), " field(s)"));
  }
  PartnerEndpoint p;
  p.name = fields[0];
  p.address = fields[1];
  if (p.name.size() > 64) return bad("the name is longer than 64 characters");
  for (char c : p.name) {
    if (!IsNameChar(c)) return bad("the name may hold only letters, digits, '.', '_' and '-'");
  }
  const std::string host = HostOf(p.address);
  if (host.empty()) return bad(absl::StrCat("'", p.address, "' is not HOST:PORT"));
  p.certificate_name = fields.size() == 3 ? fields[2] : host;
  return p;
}

absl::StatusOr<CoordinatorSettings> LoadCoordinatorSettings(const Config& config) {
  const std::string& file = config.source();
  CoordinatorSettings s;
  std::set<std::string> names;
  for (const std::string& entry : config.GetStringList("coordinator.partners")) {
    absl::StatusOr<PartnerEndpoint> p = ParsePartnerEntry(entry);
    if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat(file, ": ", p.status().message()));
    if (!names.insert(p->name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": coordinator.partners names '", p->name, "' twice"));
    }
    s.partners.push_back(*std::move(p));
  }
  if (s.partners.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": coordinator.partners is empty; a round needs partners to ask"));
  }
  const auto file_or = [&](const char* key, const char* fallback) {
    return config.IsSet(key) ? config.GetPath(key) : config.GetPath(fallback);
  };
  s.tls.ca_cert = file_or("coordinator.ca_cert", "server.ca_cert");
  // No fallback to server.cert: the registry's certificate is issued for serving only, and
  // partners refuse it as a caller.
  for (auto [key, dest] : {std::pair{"coordinator.client_cert", &s.tls.cert},
                           std::pair{"coordinator.client_key", &s.tls.key}}) {
    *dest = config.IsSet(key) ? config.GetPath(key) : "";
  }

  s.policy.quorum = static_cast<int>(config.GetInt("coordinator.quorum"));
  if (s.policy.quorum > static_cast<int>(s.partners.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ": coordinator.quorum is ", s.policy.quorum, " but only ",
                     s.partners.size(), " partner(s) are configured; no round could succeed"));
  }
  s.policy.call_deadline = absl::Seconds(config.GetInt("coordinator.call_deadline_seconds"));
  s.policy.round_deadline = absl::Seconds(config.GetInt("coordinator.round_deadline_seconds"));
  s.policy.max_attempts = static_cast<int>(config.GetInt("coordinator.max_attempts"));
  s.policy.initial_backoff = absl::Milliseconds(config.GetInt("coordinator.initial_backoff_ms"));
  s.policy.max_backoff = absl::Milliseconds(config.GetInt("coordinator.max_backoff_ms"));
  if (s.policy.max_backoff < s.policy.initial_backoff) {
    s.policy.max_backoff = s.policy.initial_backoff;
  }

  const std::string fmr_text = config.GetString("coordinator.target_fmr");
  errno = 0;
  char* end = nullptr;
  const double fmr = std::strtod(fmr_text.c_str(), &end);
  if (fmr_text.empty() || end != fmr_text.c_str() + fmr_text.size() || errno != 0 ||
      !std::isfinite(fmr) || !(fmr > 0) || !(fmr < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        file, ": coordinator.target_fmr: expected a number in (0, 1), got '", fmr_text, "'"));
  }
  s.target_fmr = fmr;
  s.non_mated_sample_size =
      static_cast<uint64_t>(config.GetInt("coordinator.non_mated_sample_size"));
  s.rounds_db = RoundsDatabasePath(config);
  return s;
}

std::string RoundsDatabasePath(const Config& config) {
  return config.GetPath("coordinator.rounds_db");
}

absl::Status CheckRoundId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("round id '", id, "' must be 1 to 64 characters of [A-Za-z0-9_-]"));
}

std::string NewRoundId() {
  unsigned char random[4] = {};
  if (RAND_bytes(random, sizeof random) != 1) {
    // Uniqueness comes from the time too; a clash is refused by the rounds store anyway.
    const uint64_t t = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
    for (int i = 0; i < 4; ++i) random[i] = static_cast<unsigned char>(t >> (8 * i));
  }
  return absl::StrFormat("r%s-%02x%02x%02x%02x",
                         absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone()),
                         random[0], random[1], random[2], random[3]);
}

uint64_t RoundSeed(const std::string& id) {
  const Sha256Digest digest = Sha256(id);
  uint64_t seed = 0;
  for (int i = 0; i < 8; ++i) seed = (seed << 8) | digest[static_cast<std::size_t>(i)];
  return seed;
}

fedface::v1::RunEvaluationRequest ToWireRequest(const RoundRequest& request) {
  fedface::v1::RunEvaluationRequest wire;
  wire.set_round_id(request.round_id);
  wire.set_model_version(request.model_version);
  wire.set_protocol(request.protocol);
  wire.set_seed(request.seed);
  wire.set_non_mated_sample_size(request.non_mated_sample_size);
  return wire;
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace fedface::vendor
