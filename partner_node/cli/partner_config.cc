#include "partner_node/cli/partner_config.h"

#include "absl/strings/str_cat.h"
#include "core/package/model_manifest.h"
#include "partner_node/egress/egress_ledger.h"
#include "partner_node/enroll/gallery_config_keys.h"
#include "partner_node/local_api/local_api_config_keys.h"
#include "partner_node/serve/serve_config.h"

namespace fedface::partner {

std::vector<ConfigKey> VendorLinkConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "vendor.address",
       .type = T::kString,
       .required = true,
       .doc = "host:port of the vendor's gRPC server (model_vendor serve's server.listen)."},
      {.path = "vendor.server_name",
       .type = T::kString,
       .doc = "Name the vendor's certificate must carry, when it differs from the host of "
              "vendor.address (e.g. connecting by IP to a certificate issued for a DNS name). "
              "Default: the host of vendor.address."},
      {.path = "vendor.ca_cert",
       .type = T::kFile,
       .required = true,
       .doc = "PEM certificate of the vendor's CA (ca.crt); the vendor's server certificate "
              "must chain to it."},
      {.path = "vendor.client_cert",
       .type = T::kFile,
       .required = true,
       .doc = "This partner's client certificate (partners/NAME/client.crt of "
              "scripts/make_certs.sh, issued for clientAuth); its CN is the partner name the "
              "vendor checks against its allowlist."},
      {.path = "vendor.client_key",
       .type = T::kFile,
       .required = true,
       .doc = "Private key of vendor.client_cert (partners/NAME/client.key)."},
      {.path = "vendor.signing_key",
       .type = T::kFile,
       .required = true,
       .doc = "The vendor's PINNED Ed25519 public key (PEM, KEY.pub of `model_vendor keygen`). "
              "Only packages whose manifest signature verifies against it are installed or "
              "activated."},
  };
}

std::vector<ConfigKey> ModelCacheConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "model_cache.dir",
       .type = T::kPath,
       .required = true,
       .doc = "Folder of verified model versions (one subfolder per version), the `active` "
              "pointer and resumable partial downloads. Created when absent."},
      {.path = "model_cache.pinned_version",
       .type = T::kString,
       .doc = "Version that `models pull` installs and activates. Default: the newest version "
              "the vendor offers. `models pull --version V` overrides it."},
      {.path = "model_cache.rpc_deadline_seconds",
       .type = T::kInt,
       .default_value = "30",
       .doc = "Deadline of each ListModels and GetManifest call.",
       .min = 1,
       .max = 3600},
      {.path = "model_cache.download_deadline_seconds",
       .type = T::kInt,
       .default_value = "1800",
       .doc = "Deadline of one weights download (a stream); an interrupted download resumes on "
              "the next pull.",
       .min = 1,
       .max = 86400},
      {.path = "model_cache.max_weights_bytes",
       .type = T::kInt,
       .default_value = absl::StrCat(kMaxWeightsBytes),
       .doc = "Largest weights file this partner accepts; a signed manifest declaring more is "
              "refused before anything is downloaded.",
       .min = 1,
       .max = static_cast<int64_t>(kMaxWeightsBytes)},
  };
}

ConfigSchema PartnerConfigSchema() {
  ConfigSchema schema("partner_node configuration", VendorLinkConfigKeys());
  schema.Add(ModelCacheConfigKeys());
  schema.Add(ServeConfigKeys());
  schema.Add(EgressLedgerConfigKeys());
  schema.Add(GalleryConfigKeys());
  schema.Add(EngineConfigKeys());
  schema.Add(LocalApiConfigKeys());
  schema.Retire(RetiredServeConfigKeys());
  return schema;
}

}  // namespace fedface::partner
