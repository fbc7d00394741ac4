// The configuration of `partner_node serve` (and of the commands that read the same state:
// `releases`, `evaluate-release`): the vendor-facing listener (vendor_api.*), the local listener
// (local_api.*), the egress guard's policy and stores (egress.*) and the evaluation protocols
// (evaluation.*). The keys are declared here and added to PartnerConfigSchema(), so that every
// partner_node command accepts the same file; docs/configuration.md documents each of them.
//
// Thread safety: plain values and free functions.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/config_file.h"
#include "core/config/config_schema.h"
#include "core/config/tls_credentials.h"
#include "partner_node/egress/egress_guard.h"
#include "partner_node/serve/vendor_rate_limiter.h"

namespace fedface::partner {

// vendor_api.*, local_api.*, egress.*, evaluation.* (not ledger.path: see egress_ledger.h).
std::vector<ConfigKey> ServeConfigKeys();
// Keys of these sections that earlier versions read and this one refuses, naming what replaced
// them (evaluation.allow_model_switch).
std::vector<RetiredConfigKey> RetiredServeConfigKeys();

// Largest request the vendor-facing listener accepts (a RunEvaluationRequest is < 200 bytes).
inline constexpr int kMaxVendorRequestBytes = 64 << 10;
// Largest message it sends (an EvaluationRelease is ~3.5 KiB: two histograms of 201 doubles).
inline constexpr int kMaxVendorResponseBytes = 1 << 20;

struct VendorApiSettings {
  std::string listen;  // host:port
  bool tls = true;     // false only when the file sets `vendor_api.tls: false` itself
  TlsFiles tls_files;  // set when tls
  std::set<std::string> allowed_vendors;
  int max_concurrent_evaluations = 2;
  RateLimits rate_limits;  // vendor_api.rate_limit.*
};

struct LocalApiSettings {
  std::string listen;  // host:port or unix:PATH
  int max_message_bytes = 16 << 20;
};

struct EgressSettings {
  EgressGuardConfig guard;
  double epsilon_budget = 0;  // per vendor, over the life of the budget file
  std::string budget_path;
  std::string held_releases_path;
};

struct EvaluationSettings {
  uint64_t max_comparisons = 0;  // per side (mated, non-mated) and request
  int identification_holdout_percent = 30;
  // A round naming a version other than the active one is evaluated on an evaluation-only
  // engine (never activated); false: such rounds are refused.
  bool evaluate_other_versions = true;
  int64_t max_reembed_images_per_round = 20000;
  int64_t max_reembed_images_per_day = 100000;  // per UTC day
  std::string state_dir;  // absolute: evaluation embeddings and the re-embedding count

  // state_dir/galleries: one gallery store per evaluated other version.
  std::string GalleriesDir() const;
  // state_dir/reembedding.db: the re-embedding count per day (reembedding_allowance.h).
  std::string ReembeddingPath() const;
};

// Each reads and checks its keys; errors name the config file and the key.
absl::StatusOr<VendorApiSettings> VendorApiSettingsFrom(const Config& config);
LocalApiSettings LocalApiSettingsFrom(const Config& config);
absl::StatusOr<EgressSettings> EgressSettingsFrom(const Config& config);
EvaluationSettings EvaluationSettingsFrom(const Config& config);

// The ledger file (ledger.path) of the configuration (the gallery store: gallery_store_config.h).
std::string LedgerPathFrom(const Config& config);

}  // namespace fedface::partner
