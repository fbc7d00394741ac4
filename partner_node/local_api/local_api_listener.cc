#include "partner_node/local_api/local_api_listener.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/config/recovering_server.h"
#include "core/config/server_limits.h"

namespace fedface::partner {
namespace {

constexpr char kUnixPrefix[] = "unix:";
constexpr size_t kMaxUnixPathBytes = 100;  // sun_path holds 108 bytes with its terminator

// Splits "HOST:PORT" / "[V6]:PORT" into host (brackets removed) and port.
bool SplitHostPort(const std::string& listen, std::string* host, std::string* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  *port = listen.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
    in6_addr v6;
    return inet_pton(AF_INET6, host->c_str(), &v6) == 1;
  }
  return !host->empty();
}

}  // namespace

absl::StatusOr<LocalMatchOptions> LocalMatchOptionsFromConfig(const Config& config,
                                                              const ModelManifest& manifest) {
  LocalMatchOptions options;
  options.model_version = manifest.version;
  options.threshold = static_cast<float>(manifest.distance.default_threshold);
  const std::string threshold = config.GetString("local_api.verify_threshold");
  if (!threshold.empty()) {
    double value = 0;
    if (!absl::SimpleAtod(threshold, &value) || !std::isfinite(value) || value <= 0 || value > 4) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.source(),
                       ": local_api.verify_threshold: expected a distance in "
                       "(0, 4], got '",
                       threshold, "'"));
    }
    options.threshold = static_cast<float>(value);
  }
  // local_api.max_message_bytes (declared with the serve keys) bounds the image itself; the
  // listener accepts that plus room for the other fields.
  options.limits.max_image_bytes = config.GetInt("local_api.max_message_bytes");
  options.limits.max_top_k = static_cast<int>(config.GetInt("local_api.max_top_k"));
  options.limits.max_pixels = config.GetInt("local_api.max_pixels");
  options.limits.max_concurrent_requests =
      static_cast<int>(config.GetInt("local_api.max_concurrent_requests"));
  options.limits.max_queued_requests =
      static_cast<int>(config.GetInt("local_api.max_queued_requests"));
  return options;
}

absl::Status ValidateLocalListenAddress(const std::string& listen) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("local API address '", listen, "': ", why));
  };
  if (absl::StartsWith(listen, kUnixPrefix)) {
    const std::string path = listen.substr(sizeof(kUnixPrefix) - 1);
    if (path.empty() || path[0] != '/') return bad("expected unix:/absolute/path");
    if (path.size() > kMaxUnixPathBytes) {
      return bad(absl::StrCat("socket path longer than ", kMaxUnixPathBytes, " bytes"));
    }
    return absl::OkStatus();
  }
  std::string host, port;
  if (!SplitHostPort(listen, &host, &port)) return bad("expected HOST:PORT or unix:/path");
  int port_number = -1;
  if (!absl::SimpleAtoi(port, &port_number) || port_number < 0 || port_number > 65535) {
    return bad("port must be 0..65535");
  }
  in_addr v4;
  in6_addr v6;
  if (host != "localhost" && inet_pton(AF_INET, host.c_str(), &v4) != 1 &&
      inet_pton(AF_INET6, host.c_str(), &v6) != 1) {
    return bad("host must be an IP address or localhost");
  }
  return absl::OkStatus();
}

bool IsLoopbackOrUnixAddress(const std::string& listen) {
  if (absl::StartsWith(listen, kUnixPrefix)) return true;
  std::string host, port;
  if (!SplitHostPort(listen, &host, &port)) return false;
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

absl::StatusOr<LocalApiListener> StartLocalApiListener(const std::string& listen,
                                                       LocalMatchService& service) {
  RETURN_IF_ERROR(ValidateLocalListenAddress(listen));
  // Rebuilt if a connection flood stops gRPC from accepting (RecoveringServer).
  auto build = [&service](const std::string& address, int* port) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
    builder.RegisterService(&service);
    builder.SetMaxReceiveMessageSize(service.MaxReceiveMessageBytes());
    builder.SetMaxSendMessageSize(4 << 20);
    // The service is callback-based: no sync thread pool to exhaust; its RequestQueue bounds the
    // work and answers a burst with its own RESOURCE_EXHAUSTED.
    ApplyServerLimits(builder);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    const bool unix_socket = absl::StartsWith(address, kUnixPrefix);
    return !unix_socket && *port <= 0 ? nullptr : std::move(server);
  };
  absl::StatusOr<std::unique_ptr<RecoveringServer>> server =
      RecoveringServer::Start("local_api.listen", listen, build, &std::cerr);
  LocalApiListener out;
  if (server.ok()) out.server = *std::move(server);
  const int port = out.server ? out.server->port() : 0;
  const bool unix_socket = absl::StartsWith(listen, kUnixPrefix);
  if (out.server == nullptr || (!unix_socket && port <= 0)) {
    return absl::UnavailableError(absl::StrCat("local API address '", listen,
                                               "': cannot listen (in use, or not an address "
                                               "of this machine)"));
  }
  if (unix_socket) {
    out.address = listen;
  } else {
    std::string host, ignored;
    SplitHostPort(listen, &host, &ignored);
    out.address =
        absl::StrCat(host.find(':') != std::string::npos ? "[" + host + "]" : host, ":", port);
  }
  return out;
}

}  // namespace fedface::partner
