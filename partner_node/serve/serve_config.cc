#include "partner_node/serve/serve_config.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/config/listen_address.h"
#include "core/config/tls_key_log_file.h"
#include "partner_node/egress/egress_ledger.h"

namespace fedface::partner {
namespace {

absl::StatusOr<double> ReadEpsilon(const Config& config, const char* key, bool allow_zero) {
  const std::string text = config.GetString(key);
  double value = 0;
  if (!absl::SimpleAtod(text, &value) || !std::isfinite(value) || value < 0 ||
      (!allow_zero && value == 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.source(), ": ", key, ": expected a number ",
                     allow_zero ? ">= 0" : "> 0", ", got '", text, "'"));
  }
  return value;
}

}  // namespace

std::vector<ConfigKey> ServeConfigKeys() {
  using T = ConfigValueType;
  return {
      {.path = "vendor_api.listen",
       .type = T::kString,
       .default_value = "127.0.0.1:7543",
       .doc = "host:port of the vendor-facing listener (fedface.v1.EvaluationService only). "
              "Port 0 picks a free port; `serve` prints the address it bound."},
      {.path = "vendor_api.tls",
       .type = T::kBool,
       .default_value = "true",
       .doc = "Mutual TLS on the vendor-facing listener. `false` (plaintext, for local tests) is "
              "honoured only when written in the file, only with vendor_api.listen on loopback "
              "(127.0.0.0/8, ::1) or a unix: socket, and logged loudly at start-up. Audit "
              "production traffic with TLS and audit.tls_key_log instead."},
      {.path = "vendor_api.ca_cert",
       .type = T::kFile,
       .doc = "CA certificate that signed the vendor's client certificate; a client without a "
              "certificate from this CA fails the TLS handshake. Required when tls is on."},
      {.path = "vendor_api.cert",
       .type = T::kFile,
       .doc = "This partner's server certificate for the vendor-facing listener "
              "(partners/NAME/server.crt of scripts/make_certs.sh: issued for serverAuth, "
              "CN=NAME, the name the vendor's coordinator.partners gives this partner); its "
              "names must include the host the vendor connects to. Required when tls is on."},
      {.path = "vendor_api.key",
       .type = T::kFile,
       .doc = "Private key of vendor_api.cert; checked against it at start-up."},
      {.path = "vendor_api.allowed_vendors",
       .type = T::kStringList,
       .default_value = "[]",
       .doc = "Vendor names (CN of the vendor's client certificate, which must be issued for "
              "clientAuth) allowed to call the evaluation service; any other is refused with "
              "PERMISSION_DENIED. With tls off it "
              "must name exactly one vendor, whom every plaintext caller is taken to be."},
      {.path = "vendor_api.max_concurrent_evaluations",
       .type = T::kInt,
       .default_value = "2",
       .doc = "Evaluations run at once; further requests wait in a queue of the same size, "
              "then are refused with UNAVAILABLE.",
       .min = 1,
       .max = 64},
      {.path = "vendor_api.rate_limit.window_seconds",
       .type = T::kInt,
       .default_value = "60",
       .doc = "Length of the windows the per-vendor rate limits count in (aligned to the epoch, "
              "in memory: a restart starts new windows). A call beyond a limit is refused with "
              "RESOURCE_EXHAUSTED and a fixed text; the refusals of one vendor, kind and window "
              "are recorded in the egress ledger as one row.",
       .min = 1,
       .max = 86400},
      {.path = "vendor_api.rate_limit.requests",
       .type = T::kInt,
       .default_value = "600",
       .doc = "Calls one vendor identity may make per window (malformed ones included); 0: no "
              "limit.",
       .min = 0,
       .max = 1000000},
      {.path = "vendor_api.rate_limit.replays",
       .type = T::kInt,
       .default_value = "60",
       .doc = "Calls per window and vendor for a round_id the vendor was already sent (each is "
              "otherwise answered with the stored release and recorded); 0: no limit.",
       .min = 0,
       .max = 1000000},
      {.path = "vendor_api.rate_limit.other_version_rounds",
       .type = T::kInt,
       .default_value = "20",
       .doc = "New rounds per window and vendor that name a model version other than the active "
              "one (the rounds that can make the partner re-embed its gallery; the re-embedding "
              "itself is bounded by evaluation.max_reembed_images_*); 0: no limit.",
       .min = 0,
       .max = 1000000},
      {.path = "local_api.listen",
       .type = T::kString,
       .default_value = "127.0.0.1:7544",
       .doc = "Address of the local match API for the partner's own applications: host:port "
              "(plaintext; keep it on loopback or a private network) or unix:/path/to.sock. "
              "Must differ from vendor_api.listen."},
      {.path = "local_api.max_message_bytes",
       .type = T::kInt,
       .default_value = "16777216",
       .doc = "Largest image the local match API accepts (the listener's message limit adds "
              "room for the other fields of a request).",
       .min = 4096,
       .max = 268435456},
      {.path = "egress.k_minimum",
       .type = T::kInt,
       .default_value = "10",
       .doc = "k: nothing is released from a cohort of fewer than k subjects (at least 5: below "
              "that a cohort's aggregates come too close to single people).",
       .min = kMinimumK,
       .max = 1000000},
      {.path = "egress.differential_privacy",
       .type = T::kBool,
       .default_value = "true",
       .doc = "Must be true (false is refused at start): discrete Laplace noise on "
              "contribution-bounded histograms, charged to the partner's privacy budget; every "
              "released metric is derived from the noisy histograms."},
      {.path = "egress.epsilon_per_release",
       .type = T::kString,
       .default_value = "1.0",
       .doc = "Epsilon of one release (a number > 0); charged once per round_id."},
      {.path = "egress.contribution_bound",
       .type = T::kInt,
       .default_value = "10",
       .doc = "c: at most c searches per subject in each identification histogram when "
              "differential privacy is on (verification uses the two bounds below).",
       .min = 1,
       .max = 100000},
      {.path = "egress.genuine_contribution_bound",
       .type = T::kInt,
       .default_value = "10",
       .doc = "c_g: at most c_g mated comparisons (own image pairs) per subject in a "
              "differentially private verification release.",
       .min = 1,
       .max = 10000},
      {.path = "egress.impostor_contribution_bound",
       .type = T::kInt,
       .default_value = "64",
       .doc = "c_i: at most c_i impostor comparisons per subject (an even number: each subject is "
              "compared with its next c_i / 2 subjects on a keyed hash ring).",
       .min = 2,
       .max = 10000},
      {.path = "egress.impostor_epsilon_share",
       .type = T::kString,
       .default_value = "0.8",
       .doc = "Share of a verification release's histogram epsilon spent on the impostor "
              "histogram (a number in [0.05, 0.95]); the rest goes to the genuine histogram."},
      {.path = "egress.epsilon_budget",
       .type = T::kString,
       .default_value = "10",
       .doc = "Total epsilon each vendor may spend (a number >= 0), kept in egress.budget_path "
              "across restarts; a request that would overspend is refused with "
              "RESOURCE_EXHAUSTED."},
      {.path = "egress.budget_path",
       .type = T::kPath,
       .default_value = "privacy_budget.db",
       .doc = "SQLite file of the per-vendor privacy budget and of every release sent (so that "
              "a repeated round_id gets the same bytes)."},
      {.path = "egress.require_approval",
       .type = T::kBool,
       .default_value = "false",
       .doc = "Hold every new release until a person runs `partner_node releases approve ID`; "
              "the vendor's retry with the same round_id then receives it."},
      {.path = "egress.held_releases_path",
       .type = T::kPath,
       .default_value = "held_releases.db",
       .doc = "SQLite file of releases held for approval (approval mode)."},
      TlsKeyLogConfigKey("the vendor-facing listener and of the channel to the model registry"),
      {.path = "evaluation.max_comparisons",
       .type = T::kInt,
       .default_value = "20000000",
       .doc = "Most mated or non-mated comparisons one request may run; a request for all "
              "non-mated pairs of a larger gallery is refused (ask for a sample).",
       .min = 1,
       .max = int64_t{1} << 40},
      {.path = "evaluation.identification_holdout_percent",
       .type = T::kInt,
       .default_value = "30",
       .doc = "Share of subjects (seeded choice) left out of the identification gallery to "
              "make non-mated searches.",
       .min = 5,
       .max = 95},
      {.path = "evaluation.evaluate_other_versions",
       .type = T::kBool,
       .default_value = "true",
       .doc = "Let a vendor round name a model version other than the active one: the partner "
              "pulls and verifies it into the model cache if needed (never making it active), "
              "loads it on an evaluation-only engine and embeds the gallery.dir images with it "
              "into a store of its own under evaluation.state_dir. The local match API keeps "
              "serving the active model. false: such rounds are refused FAILED_PRECONDITION."},
      {.path = "evaluation.max_reembed_images_per_round",
       .type = T::kInt,
       .default_value = "20000",
       .doc = "Most gallery images one vendor round may make the partner embed (for another "
              "version, or after an activation for the active one); a round needing more is "
              "refused RESOURCE_EXHAUSTED with a fixed text, the counts in the partner's log.",
       .min = 0,
       .max = int64_t{1} << 40},
      {.path = "evaluation.max_reembed_images_per_day",
       .type = T::kInt,
       .default_value = "100000",
       .doc = "Most gallery images vendor rounds may make the partner embed per UTC day, all "
              "rounds and versions together; counted in evaluation.state_dir/reembedding.db "
              "across restarts. Beyond it rounds that need embedding are refused like above.",
       .min = 0,
       .max = int64_t{1} << 40},
      {.path = "evaluation.state_dir",
       .type = T::kPath,
       .default_value = "evaluation_state",
       .doc = "Folder of the evaluation-only state (created when needed): galleries/VERSION.db, "
              "the evaluation embeddings of gallery.dir under each other version a round "
              "evaluated (reused by later rounds, also after a restart), and reembedding.db, the "
              "re-embedding count per day."},
  };
}

std::vector<RetiredConfigKey> RetiredServeConfigKeys() {
  return {
      {.path = "evaluation.allow_model_switch",
       .advice = "vendor rounds no longer switch the partner's model. Use "
                 "`evaluation.evaluate_other_versions: true|false` (whether a round may EVALUATE "
                 "another version, without activating it) and `partner_node models activate "
                 "VERSION` to change the active model."},
  };
}

absl::StatusOr<VendorApiSettings> VendorApiSettingsFrom(const Config& config) {
  VendorApiSettings s;
  s.listen = config.GetString("vendor_api.listen");
  // Plaintext only when the file itself says so: a default can never turn TLS off.
  s.tls = !(config.IsSet("vendor_api.tls") && !config.GetBool("vendor_api.tls"));
  for (const std::string& v : config.GetStringList("vendor_api.allowed_vendors")) {
    if (absl::Status st = CheckVendorIdentity(v); !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.source(), ": vendor_api.allowed_vendors: '", v, "': ", st.message()));
    }
    s.allowed_vendors.insert(v);
  }
  if (s.allowed_vendors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(), ": vendor_api.allowed_vendors is empty; no vendor could connect"));
  }
  if (s.tls) {
    for (const char* key : {"vendor_api.ca_cert", "vendor_api.cert", "vendor_api.key"}) {
      if (!config.IsSet(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat(config.source(), ": ", key, " is required while vendor_api.tls is on"));
      }
    }
    s.tls_files = {config.GetPath("vendor_api.ca_cert"), config.GetPath("vendor_api.cert"),
                   config.GetPath("vendor_api.key")};
  } else if (!IsLoopbackListenAddress(s.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(), ": vendor_api.tls is false but vendor_api.listen '", s.listen,
        "' is not a loopback address (127.0.0.0/8, [::1]) or a unix: socket; a plaintext "
        "listener elsewhere lets anyone on that network act as the vendor. Use mutual TLS "
        "(and audit.tls_key_log for a traffic audit)"));
  } else if (s.allowed_vendors.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(),
        ": vendor_api.tls is false, so vendor_api.allowed_vendors must name exactly one vendor "
        "(plaintext callers cannot be told apart)"));
  }
  s.max_concurrent_evaluations =
      static_cast<int>(config.GetInt("vendor_api.max_concurrent_evaluations"));
  s.rate_limits.window_seconds = config.GetInt("vendor_api.rate_limit.window_seconds");
  s.rate_limits.requests = config.GetInt("vendor_api.rate_limit.requests");
  s.rate_limits.replays = config.GetInt("vendor_api.rate_limit.replays");
  s.rate_limits.other_version_rounds = config.GetInt("vendor_api.rate_limit.other_version_rounds");
  return s;
}

LocalApiSettings LocalApiSettingsFrom(const Config& config) {
  LocalApiSettings s;
  s.listen = config.GetString("local_api.listen");
  s.max_message_bytes = static_cast<int>(config.GetInt("local_api.max_message_bytes"));
  return s;
}

absl::StatusOr<EgressSettings> EgressSettingsFrom(const Config& config) {
  EgressSettings s;
  s.guard.k_minimum = static_cast<int>(config.GetInt("egress.k_minimum"));
  s.guard.dp.enabled = config.GetBool("egress.differential_privacy");
  if (!s.guard.dp.enabled) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(),
        ": egress.differential_privacy: false is refused: every release toward a vendor carries "
        "differential privacy (exact figures stay on this machine: `partner_node evaluate`)"));
  }
  ASSIGN_OR_RETURN(double eps, ReadEpsilon(config, "egress.epsilon_per_release", false));
  s.guard.dp.epsilon_per_release = eps;
  s.guard.dp.contribution_bound = static_cast<int>(config.GetInt("egress.contribution_bound"));
  s.guard.dp.genuine_contribution_bound =
      static_cast<int>(config.GetInt("egress.genuine_contribution_bound"));
  s.guard.dp.impostor_contribution_bound =
      static_cast<int>(config.GetInt("egress.impostor_contribution_bound"));
  if (s.guard.dp.impostor_contribution_bound % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(), ": egress.impostor_contribution_bound: expected an even number, got ",
        s.guard.dp.impostor_contribution_bound));
  }
  const std::string share_text = config.GetString("egress.impostor_epsilon_share");
  double share = 0;
  if (!absl::SimpleAtod(share_text, &share) || !(share >= kMinImpostorEpsilonShare) ||
      !(share <= kMaxImpostorEpsilonShare)) {
    return absl::InvalidArgumentError(absl::StrCat(
        config.source(), ": egress.impostor_epsilon_share: expected a number in [",
        kMinImpostorEpsilonShare, ", ", kMaxImpostorEpsilonShare, "], got '", share_text, "'"));
  }
  s.guard.dp.impostor_epsilon_share = share;
  ASSIGN_OR_RETURN(double budget, ReadEpsilon(config, "egress.epsilon_budget", true));
  s.epsilon_budget = budget;
  s.budget_path = config.GetPath("egress.budget_path");
  s.held_releases_path = config.GetPath("egress.held_releases_path");
  s.guard.require_approval = config.GetBool("egress.require_approval");
  return s;
}

EvaluationSettings EvaluationSettingsFrom(const Config& config) {
  EvaluationSettings s;
  s.max_comparisons = static_cast<uint64_t>(config.GetInt("evaluation.max_comparisons"));
  s.identification_holdout_percent =
      static_cast<int>(config.GetInt("evaluation.identification_holdout_percent"));
  s.evaluate_other_versions = config.GetBool("evaluation.evaluate_other_versions");
  s.max_reembed_images_per_round = config.GetInt("evaluation.max_reembed_images_per_round");
  s.max_reembed_images_per_day = config.GetInt("evaluation.max_reembed_images_per_day");
  s.state_dir = config.GetPath("evaluation.state_dir");
  return s;
}

std::string EvaluationSettings::GalleriesDir() const {
  return (std::filesystem::path(state_dir) / "galleries").string();
}

std::string EvaluationSettings::ReembeddingPath() const {
  return (std::filesystem::path(state_dir) / "reembedding.db").string();
}

std::string LedgerPathFrom(const Config& config) { return config.GetPath(kLedgerPathConfigKey); }

}  // namespace fedface::partner
