// The local listener: a gRPC server of its own that carries ONLY the local match API, on the
// partner's address (local_api.listen: 127.0.0.1:PORT by default, or unix:/path). Being a separate
// grpc::Server, it shares no port, credentials or service table with the vendor-facing server,
// so a vendor connection cannot reach a local-API method and vice versa.
//
// Also what the local match API's configuration keys (local_api_config_keys.h) mean for
// LocalMatchService.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/config/config_schema.h"
#include "core/config/recovering_server.h"
#include "core/package/model_manifest.h"
#include "partner_node/local_api/local_api_config_keys.h"
#include "partner_node/local_api/local_match_service.h"

namespace fedface::partner {

// LocalMatchOptions from the local_api.* keys and the model: the image limit is
// local_api.max_message_bytes; the threshold is
// local_api.verify_threshold when set, else the manifest's signed distance.default_threshold.
// Fails naming the key when verify_threshold is not a number in (0, 4].
absl::StatusOr<LocalMatchOptions> LocalMatchOptionsFromConfig(const Config& config,
                                                              const ModelManifest& manifest);

// Checks a listen address: "HOST:PORT" (an IPv4 literal, "localhost", or "[IPv6]"), PORT
// 0..65535 (0 picks a free port), or "unix:/absolute/path" (at most 100 bytes). Returns
// InvalidArgument naming the address otherwise.
absl::Status ValidateLocalListenAddress(const std::string& listen);

// True for 127.0.0.0/8, [::1], localhost and unix: addresses.
bool IsLoopbackOrUnixAddress(const std::string& listen);

struct LocalApiListener {
  std::unique_ptr<RecoveringServer> server;  // rebuilt after gRPC stops accepting
  std::string address;  // as bound: "127.0.0.1:40123" (the chosen port) or "unix:/path"
};

// Starts a plaintext gRPC server on `listen` that serves only `service`, accepting messages up to
// service.MaxReceiveMessageBytes() (larger ones are refused by gRPC with RESOURCE_EXHAUSTED).
// A stale Unix socket file from a killed process is replaced. Fails naming the address when it
// cannot listen. `service` must outlive the server.
absl::StatusOr<LocalApiListener> StartLocalApiListener(const std::string& listen,
                                                       LocalMatchService& service);

}  // namespace fedface::partner
