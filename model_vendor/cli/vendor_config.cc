#include "model_vendor/cli/vendor_config.h"

#include "absl/strings/str_cat.h"
#include "core/config/tls_key_log_file.h"
#include "core/package/model_manifest.h"

namespace fedface::vendor {

std::vector<ConfigKey> CoordinatorConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "coordinator.partners",
       .type = T::kStringList,
       .default_value = "[]",
       .doc = "Partners an evaluation round asks, one entry each: 'NAME HOST:PORT "
              "[CERTIFICATE_NAME]'. NAME labels the partner in reports and is its identity: "
              "the server certificate that answers at HOST:PORT must carry CN=NAME and be "
              "issued for serverAuth, else its answer is refused. HOST:PORT is its "
              "vendor-facing listener (partner_node serve); CERTIFICATE_NAME is the host name "
              "that certificate must also carry (default: HOST)."},
      {.path = "coordinator.ca_cert",
       .type = T::kFile,
       .doc = "PEM certificate of the CA that signed the partners' server certificates. "
              "Default: server.ca_cert."},
      {.path = "coordinator.client_cert",
       .type = T::kFile,
       .doc = "PEM client certificate the vendor presents to partners (coordinator.crt of "
              "scripts/make_certs.sh; issued for clientAuth; its CN is the vendor identity "
              "partners charge privacy budget to). Required for a round over mutual TLS."},
      {.path = "coordinator.client_key",
       .type = T::kFile,
       .doc = "PEM private key of coordinator.client_cert."},
      {.path = "coordinator.quorum",
       .type = T::kInt,
       .default_value = "2",
       .doc = "A round succeeds when at least this many partners contributed histograms; "
              "below it the pooled metrics are withheld and the command exits 1.",
       .min = 1,
       .max = 10000},
      {.path = "coordinator.call_deadline_seconds",
       .type = T::kInt,
       .default_value = "900",
       .doc = "Deadline of one RunEvaluation call (the partner evaluates on its own machines "
              "while the call is open).",
       .min = 1,
       .max = 86400},
      {.path = "coordinator.round_deadline_seconds",
       .type = T::kInt,
       .default_value = "3600",
       .doc = "Deadline of the whole round, retries included; partners still silent then are "
              "reported as timed out.",
       .min = 1,
       .max = 604800},
      {.path = "coordinator.max_attempts",
       .type = T::kInt,
       .default_value = "4",
       .doc = "Attempts per partner when the error is transient (UNAVAILABLE, "
              "DEADLINE_EXCEEDED). Every attempt carries the same round id, so a partner "
              "replays its stored release instead of charging its privacy budget again.",
       .min = 1,
       .max = 100},
      {.path = "coordinator.initial_backoff_ms",
       .type = T::kInt,
       .default_value = "1000",
       .doc = "Pause before the first retry; each further retry doubles it (plus up to 20% "
              "random jitter), up to coordinator.max_backoff_ms.",
       .min = 1,
       .max = 3600000},
      {.path = "coordinator.max_backoff_ms",
       .type = T::kInt,
       .default_value = "30000",
       .doc = "Longest pause between two attempts.",
       .min = 1,
       .max = 3600000},
      {.path = "coordinator.target_fmr",
       .type = T::kString,
       .default_value = "1e-3",
       .doc = "False match rate the recommended global threshold is calibrated for, from the "
              "pooled impostor histogram (a number in (0, 1), e.g. 1e-3)."},
      {.path = "coordinator.non_mated_sample_size",
       .type = T::kInt,
       .default_value = "0",
       .doc = "Non-mated comparisons each partner samples (seeded by the round id); 0 asks for "
              "all of them.",
       .min = 0,
       .max = 1000000000000},
      {.path = "coordinator.rounds_db",
       .type = T::kPath,
       .default_value = "rounds.db",
       .doc = "SQLite database of rounds (`model_vendor rounds list|show`); created when "
              "absent. Relative to the configuration file's folder."},
  };
}

ConfigSchema VendorConfigSchema() {
  using T = ConfigValueType;
  ConfigSchema schema(
      "model_vendor configuration",
      {
          {.path = "server.listen",
           .type = T::kString,
           .default_value = "127.0.0.1:7443",
           .doc = "host:port the vendor's gRPC server listens on (mutual TLS only). Port 0 "
                  "picks a free port; the chosen address is printed on start-up."},
          {.path = "server.ca_cert",
           .type = T::kFile,
           .required = true,
           .doc = "PEM certificate of the CA that signed the partners' client certificates "
                  "(ca.crt of scripts/make_certs.sh)."},
          {.path = "server.cert",
           .type = T::kFile,
           .required = true,
           .doc = "PEM server certificate of the registry (registry.crt of "
                  "scripts/make_certs.sh, issued for serverAuth); its names must include the "
                  "host partners connect to."},
          {.path = "server.key",
           .type = T::kFile,
           .required = true,
           .doc = "PEM private key of server.cert (registry.key)."},
          {.path = "server.partners",
           .type = T::kStringList,
           .required = true,
           .doc = "Allowlist of partner names. A partner's name is the common name (CN) of its "
                  "client certificate (issued for clientAuth); any other certificate, even from "
                  "the same CA, is refused with PERMISSION_DENIED."},
          TlsKeyLogConfigKey("the registry server and of the coordinator's channels to "
                             "partners (`model_vendor round`)"),
          {.path = "registry.dir",
           .type = T::kDir,
           .required = true,
           .doc = "Folder of published packages: one subfolder per version, named by the "
                  "version, as written by `model_vendor package` (manifest.json, manifest.sig, "
                  "weights.dat, selftest/). Rescanned on every request."},
          {.path = "registry.max_weights_bytes",
           .type = T::kInt,
           .default_value = absl::StrCat(kMaxWeightsBytes),
           .doc = "Largest weights.dat the server sends; larger packages are refused.",
           .min = 1,
           .max = static_cast<int64_t>(kMaxWeightsBytes)},
          {.path = "registry.chunk_bytes",
           .type = T::kInt,
           .default_value = "1048576",
           .doc = "Bytes per weights chunk of DownloadWeights (the protocol's limit is 1 MiB).",
           .min = 1024,
           .max = 1048576},
          {.path = "registry.test_delay_per_chunk_ms",
           .type = T::kInt,
           .default_value = "0",
           .doc = "TESTS ONLY: pause after each weights chunk, to simulate a slow link so that "
                  "a test can interrupt a download half-way. Leave 0 in production.",
           .min = 0,
           .max = 10000},
      });
  schema.Add(CoordinatorConfigKeys());
  return schema;
}

}  // namespace fedface::vendor
