// The keys of model_vendor's configuration file (`model_vendor serve --config FILE`). One file
// per process: the vendor's server section (listen address, mutual TLS, partner allowlist) and
// the model registry's section. docs/configuration.md documents every key.
#pragma once

#include <vector>

#include "core/config/config_schema.h"

namespace fedface::vendor {

// coordinator.*: the partners evaluation rounds ask (`model_vendor round`), the vendor's client
// TLS files for them (default: the server.* files) and the round defaults (quorum, deadlines,
// retries, target FMR, rounds database). model_vendor/coordinator/ reads and checks them.
std::vector<ConfigKey> CoordinatorConfigKeys();

// server.*: listen address, TLS files, partner allowlist. registry.*: registry folder, limits
// and the test-only throttle. coordinator.*: as above.
ConfigSchema VendorConfigSchema();

}  // namespace fedface::vendor
