#include "partner_node/audit/peer_allowlist.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"

namespace fedface::partner::audit {
namespace {

constexpr uint8_t kProtoIcmpv6 = 58;

struct HostPort {
  std::string host;
  std::string port;
};

// "host:port" or "[v6]:port"; the port text as written.
absl::StatusOr<HostPort> SplitHostPort(const std::string& text) {
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find("]:");
    if (close == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected [ADDR]:PORT"));
    }
    return HostPort{text.substr(1, close - 1), text.substr(close + 2)};
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || text.find(':') != colon) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected HOST:PORT"));
  }
  return HostPort{text.substr(0, colon), text.substr(colon + 1)};
}

absl::StatusOr<uint16_t> ParsePort(const std::string& text, const std::string& whole) {
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text, &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", whole, "': the port must be 1..65535 (or * for a peer connecting in)"));
  }
  return static_cast<uint16_t>(port);
}

// The address itself, or every address the name resolves to here.
absl::StatusOr<std::vector<IpAddress>> Resolve(const std::string& host) {
  if (absl::StatusOr<IpAddress> ip = IpAddress::Parse(host); ip.ok()) return {{*ip}};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found); rc != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve '", host, "' on this host: ", gai_strerror(rc)));
  }
  std::vector<IpAddress> out;
  for (addrinfo* a = found; a; a = a->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof(text), nullptr, 0, NI_NUMERICHOST)) {
      continue;
    }
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
    if (ip.ok() && std::find(out.begin(), out.end(), *ip) == out.end()) out.push_back(*ip);
  }
  freeaddrinfo(found);
  if (out.empty()) return absl::NotFoundError(absl::StrCat("'", host, "' has no address"));
  return out;
}

}  // namespace

bool PeerAllowlist::AllowsOutgoing(const Endpoint& server) const {
  return std::any_of(outgoing.begin(), outgoing.end(),
                     [&](const Outgoing& o) { return o.ip == server.ip && o.port == server.port; });
}

bool PeerAllowlist::AllowsIncoming(const Endpoint& client, const Endpoint& partner_end) const {
  if (!incoming_ports.count(partner_end.port)) return false;
  return incoming_from.empty() ||
         std::find(incoming_from.begin(), incoming_from.end(), client.ip) != incoming_from.end();
}

std::string PeerAllowlist::Describe() const {
  std::vector<std::string> out;
  for (const Outgoing& o : outgoing) {
    out.push_back(absl::StrCat(Endpoint{o.ip, o.port}.ToString(), " (", o.source, ")"));
  }
  std::vector<std::string> ports, from;
  for (uint16_t p : incoming_ports) ports.push_back(absl::StrCat(p));
  for (const IpAddress& ip : incoming_from) from.push_back(ip.ToString());
  return absl::StrCat(
      "outgoing only to ", out.empty() ? std::string("nobody") : absl::StrJoin(out, ", "),
      "; incoming only ",
      ports.empty()
          ? std::string("nowhere")
          : absl::StrCat("on port ", absl::StrJoin(ports, ", "), " from ",
                         from.empty() ? std::string("any address") : absl::StrJoin(from, ", ")));
}

absl::Status AddOutgoingPeer(const std::string& host_port, const std::string& source,
                             PeerAllowlist* list) {
  ASSIGN_OR_RETURN(HostPort hp, SplitHostPort(host_port));
  ASSIGN_OR_RETURN(uint16_t port, ParsePort(hp.port, host_port));
  ASSIGN_OR_RETURN(std::vector<IpAddress> ips, Resolve(hp.host));
  for (const IpAddress& ip : ips) list->outgoing.push_back({ip, port, source});
  return absl::OkStatus();
}

absl::Status AddAllowedPeer(const std::string& text, PeerAllowlist* list) {
  ASSIGN_OR_RETURN(HostPort hp, SplitHostPort(text));
  if (hp.port != "*") return AddOutgoingPeer(text, "--allow-peer", list);
  ASSIGN_OR_RETURN(std::vector<IpAddress> ips, Resolve(hp.host));
  for (const IpAddress& ip : ips) list->incoming_from.push_back(ip);
  return absl::OkStatus();
}

std::optional<uint16_t> ListenPort(const std::string& address) {
  if (address.rfind("unix", 0) == 0) return std::nullopt;
  absl::StatusOr<HostPort> hp = SplitHostPort(address);
  if (!hp.ok()) return std::nullopt;
  absl::StatusOr<uint16_t> port = ParsePort(hp->port, address);
  if (!port.ok()) return std::nullopt;
  return *port;
}

bool IsLinkHousekeeping(uint8_t ip_protocol, std::string_view payload) {
  if (ip_protocol != kProtoIcmpv6 || payload.empty()) return false;
  const uint8_t type = static_cast<uint8_t>(payload[0]);
  return type >= 133 && type <= 137;
}

}  // namespace fedface::partner::audit
