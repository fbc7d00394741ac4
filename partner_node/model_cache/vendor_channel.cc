#include "partner_node/model_cache/vendor_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"

namespace fedface::partner {

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenVendorChannel(const Config& config) {
  absl::StatusOr<TlsMaterial> tls =
      LoadTlsMaterial({config.GetPath("vendor.ca_cert"), config.GetPath("vendor.client_cert"),
                       config.GetPath("vendor.client_key")});
  if (!tls.ok()) return tls.status();
  absl::StatusOr<TlsEndpointOptions> options = TlsEndpointOptionsFrom(config);
  if (!options.ok()) return options.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxVendorMessageBytes);
  args.SetMaxSendMessageSize(kMaxPartnerRequestBytes);
  const std::string server_name = config.GetString("vendor.server_name");
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(config.GetString("vendor.address"),
                                   MutualTlsChannelCredentials(*tls, *options), args);
}

}  // namespace fedface::partner
