// The keys of partner_node's configuration file (one YAML file per process; docs/configuration.md
// documents every key). This file declares the vendor link (vendor.*: address, mutual TLS, the
// pinned signing key) and the model cache (model_cache.*). Other partner components add their
// own section here, so that every command of the process accepts the same file.
#pragma once

#include <vector>

#include "core/config/config_schema.h"

namespace fedface::partner {

// vendor.*: how to reach and trust the vendor.
std::vector<ConfigKey> VendorLinkConfigKeys();

// model_cache.*: where verified models live and the download limits.
std::vector<ConfigKey> ModelCacheConfigKeys();

// The whole partner_node file.
ConfigSchema PartnerConfigSchema();

}  // namespace fedface::partner
