// SHA-256 digests (OpenSSL). Used for weights, image content hashes, ledger chaining and audits.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fedface {

using Sha256Digest = std::array<uint8_t, 32>;

// Digest of `data`. Never fails.
Sha256Digest Sha256(std::string_view data);

// Lower-case hex of a digest (64 characters).
std::string ToHex(const Sha256Digest& digest);

// Lower-case hex of sha256(data).
std::string Sha256Hex(std::string_view data);

// True when `s` is a digest as ToHex writes it: exactly 64 lower-case hex characters.
bool IsSha256Hex(std::string_view s);

// Streams the file through SHA-256; error names the file when it cannot be read.
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace fedface
