// What a gRPC listen address ("host:port", "[v6]:port", "unix:/path") exposes.
//
// Thread safety: free functions.
#pragma once

#include <string>

namespace fedface {

// True when `address` can only be reached from this host: a unix: (or unix-abstract:) socket, an
// IPv4 address in 127.0.0.0/8 or the IPv6 loopback ::1. Host names (even "localhost"), 0.0.0.0,
// [::] and every other address are false.
bool IsLoopbackListenAddress(const std::string& address);

}  // namespace fedface
