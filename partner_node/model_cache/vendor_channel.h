// The partner's gRPC channel to the vendor: mutual TLS from the vendor.* keys of the partner's
// configuration, with message-size limits so that a misbehaving server cannot make the partner
// buffer more than a manifest response (a 1 MiB manifest and up to 16 chips of 1 MiB).
#pragma once

#include <grpcpp/channel.h>

#include <memory>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"

namespace fedface::partner {

// Largest message the partner accepts from the vendor.
inline constexpr int kMaxVendorMessageBytes = 18 << 20;
// Largest message the partner sends (requests are a version and an offset).
inline constexpr int kMaxPartnerRequestBytes = 64 << 10;

// Loads and checks the TLS files named by vendor.ca_cert / client_cert / client_key (errors name
// the file) and returns a lazily connecting channel to vendor.address that verifies the vendor's
// certificate chain and name (vendor.server_name, or the host of vendor.address).
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenVendorChannel(const Config& config);

}  // namespace fedface::partner
