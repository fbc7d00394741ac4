// Who a partner may talk to on the wire (issue 11): the configured registry (outgoing) and the
// vendor's coordinator (incoming on the vendor-facing port). The traffic audit reports every
// other TCP connection of the partner, and every non-TCP packet from its addresses except ICMPv6
// neighbour discovery, as an unexpected-peer violation (traffic_audit.h).
//
// Thread safety: plain data and free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/audit/captured_packet.h"

namespace fedface::partner::audit {

struct PeerAllowlist {
  // A server the partner may open connections to.
  struct Outgoing {
    IpAddress ip;
    uint16_t port = 0;
    std::string source;  // where the rule came from: "--allow-peer", "vendor.address NAME:PORT"
  };
  std::vector<Outgoing> outgoing;
  // The partner's ports others may connect to (its vendor-facing listener).
  std::set<uint16_t> incoming_ports;
  // Who may connect in; empty: any address (the coordinator's is not known to the partner).
  std::vector<IpAddress> incoming_from;

  bool AllowsOutgoing(const Endpoint& server) const;
  bool AllowsIncoming(const Endpoint& client, const Endpoint& partner_end) const;
  // One line: "outgoing only to A:P (source), ...; incoming only on port P from any address".
  std::string Describe() const;
};

// Adds `--allow-peer HOST:PORT` to `list`: HOST an IP address or a name (resolved here, every
// address), PORT a number (a server the partner connects to) or `*` (a peer that connects in,
// from any of its ports). "[v6]:PORT" for IPv6. Fails naming the text.
absl::Status AddAllowedPeer(const std::string& text, PeerAllowlist* list);

// Adds an outgoing rule for "HOST:PORT" (vendor.address): every address HOST resolves to on
// this host now (getaddrinfo; an IP address is taken as it is). `source` names the rule.
absl::Status AddOutgoingPeer(const std::string& host_port, const std::string& source,
                             PeerAllowlist* list);

// The port of a listen address "host:port" / "[v6]:port"; nullopt for unix: sockets or port 0.
std::optional<uint16_t> ListenPort(const std::string& address);

// True for what a link needs from the partner's own address beside TCP: ICMPv6 router/neighbour
// solicitations and advertisements and redirects (types 133-137). ARP is not IP and is never
// looked at. Everything else non-TCP (UDP, DNS included; ICMP; MLD) is unexpected.
bool IsLinkHousekeeping(uint8_t ip_protocol, std::string_view payload);

}  // namespace fedface::partner::audit
