// Limits every gRPC server of fedface applies against a hostile caller (the vendor port, the
// local match API and the vendor's registry), in one place so that no listener forgets one.
//
// ApplyServerLimits ENSURES on the builder:
//   - no compression: gzip and deflate are not accepted (a compressed request is refused from its
//     headers, before its message is inflated) and replies are never compressed (the ledger's
//     sha256 is of the bytes on the wire);
//   - at most kMaxConcurrentStreams streams per connection;
//   - idle connections closed after kMaxConnectionIdle, every connection after kMaxConnectionAge
//     (plus a grace period for calls in flight), so connections cannot be held forever;
//   - a connection must complete its handshake within kHandshakeTimeoutMs;
//   - the port is not shared (no SO_REUSEPORT): a second server on it fails instead.
// RaiseOpenFileLimit ENSURES: the soft RLIMIT_NOFILE of the process is its hard limit (a burst
// of connections does not exhaust descriptors at the default 1024).
#pragma once

#include <grpcpp/server_builder.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace fedface {

inline constexpr int kMaxConcurrentStreams = 32;
inline constexpr int kMaxConnectionIdleMs = 10 * 60 * 1000;
inline constexpr int kMaxConnectionAgeMs = 60 * 60 * 1000;
inline constexpr int kMaxConnectionAgeGraceMs = 5 * 60 * 1000;
// A connection that has not completed its (TLS/HTTP/2) handshake holds a descriptor: 20 s, not
// gRPC's 120 s.
inline constexpr int kHandshakeTimeoutMs = 20 * 1000;

void ApplyServerLimits(grpc::ServerBuilder& builder);

// Returns the new soft limit; fails (naming the call) when getrlimit/setrlimit fail.
absl::StatusOr<uint64_t> RaiseOpenFileLimit();

}  // namespace fedface
