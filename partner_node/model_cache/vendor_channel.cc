#include "partner_node/model_cache/vendor_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include "core/common/status_macros.h"
#include "core/config/tls_credentials.h"
#include "core/config/tls_key_log_file.h"

namespace fedface::partner {

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenVendorChannel(const Config& config) {
  ASSIGN_OR_RETURN(TlsMaterial tls, LoadTlsMaterial({config.GetPath("vendor.ca_cert"),
                                                     config.GetPath("vendor.client_cert"),
                                                     config.GetPath("vendor.client_key")}));
  ASSIGN_OR_RETURN(TlsEndpointOptions options, TlsEndpointOptionsFrom(config));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxVendorMessageBytes);
  args.SetMaxSendMessageSize(kMaxPartnerRequestBytes);
  const std::string server_name = config.GetString("vendor.server_name");
  if (!server_name.empty()) args.SetSslTargetNameOverride(server_name);
  return grpc::CreateCustomChannel(config.GetString("vendor.address"),
                                   MutualTlsChannelCredentials(tls, options), args);
}

}  // namespace fedface::partner
