// `partner_node audit`: the traffic audit as a tool for a partner's security officer. Reads pcap
// captures of the partner's link to the vendor and proves (or refutes) that nothing but
// allowlisted gRPC messages, recorded in the egress ledger, crossed it.
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/common/cli_args.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "core/config/config_file.h"
#include "partner_node/audit/audit_inputs.h"
#include "partner_node/audit/tls_key_log.h"
#include "partner_node/audit/traffic_audit.h"
#include "partner_node/cli/command.h"
#include "partner_node/cli/partner_config.h"
#include "partner_node/gallery/gallery_store_config.h"
#include "partner_node/serve/serve_config.h"

namespace fedface::partner {
namespace {

// Every embedding of the store, read through the GalleryStore interface.
absl::StatusOr<std::vector<audit::StoredBytes>> StoredEmbeddingsOf(const GalleryStoreSpec& spec) {
  ASSIGN_OR_RETURN(std::unique_ptr<GalleryStore> store, OpenGalleryStore(spec));
  return audit::LoadStoredEmbeddings(*store);
}

constexpr char kUsage[] =
    "usage: partner_node audit --pcap FILE [--pcap FILE ...] (--port PORT | --partner-ip ADDR "
    "...)\n"
    "                          [--tls-keylog FILE ...] [--canaries FILE] [--embeddings-db PATH]\n"
    "                          [--ledger PATH] [--config PARTNER.yaml] [--allow-peer HOST:PORT "
    "...]\n"
    "                          [--capture-mode namespace|loopback] [--json]\n"
    "\n"
    "Audits packet captures (pcap/pcapng: Ethernet, Linux cooked 'tcpdump -i any', raw IP) of\n"
    "the partner's link to the vendor: plaintext, or mutual TLS 1.3 decrypted with the partner's\n"
    "own session secrets (--tls-keylog). Exit 0: the capture shows nothing but known,\n"
    "well-formed gRPC messages and no forbidden bytes; exit 1: violations (each listed with its\n"
    "capture file, frame, connection, HTTP/2 stream and offset) or the audit could not run;\n"
    "exit 2: usage error. Captures are read in the order given, as one capture.\n"
    "\n"
    "Who is the partner:\n"
    "  --port PORT            the partner's vendor-facing listener; what it sends leaves the "
    "partner\n"
    "  --partner-ip ADDR      (repeatable) every byte sent from ADDR left the partner "
    "(connections\n"
    "                         it opens too); for captures on the partner's own link, not loopback\n"
    "  --registry-port PORT   (repeatable) the vendor's model registry: the partner is the "
    "client\n"
    "                         of every connection to PORT (its model pulls); for loopback\n"
    "                         captures that hold only this partner's pulls\n"
    "TLS (production):\n"
    "  --tls-keylog FILE      (repeatable) the partner's key log(s) (audit.tls_key_log): each\n"
    "                         TLS 1.3 connection is decrypted and checked like plaintext; one\n"
    "                         that cannot be decrypted to its end is a violation\n"
    "  --config FILE          the partner's configuration; without --tls-keylog, its\n"
    "                         audit.tls_key_log is the key log; it also sets the peers below\n"
    "                         and the egress.* privacy settings a layout-2 release must state\n"
    "                         (without it, such a release is a release-shape violation)\n"
    "Who the partner may talk to (without these, peers are not checked):\n"
    "  --config FILE          outgoing only to vendor.address (the registry; a host name is\n"
    "                         resolved here, now), incoming only on vendor_api.listen's port\n"
    "                         (from any address: the coordinator's is not in the config)\n"
    "  --allow-peer HOST:PORT (repeatable) the partner may connect to HOST:PORT; HOST:* lets\n"
    "                         HOST connect in (then only the HOST:* peers may), on --port or\n"
    "                         vendor_api.listen's port. Any other TCP connection of the\n"
    "                         partner, and any non-TCP packet from --partner-ip except ICMPv6\n"
    "                         neighbour discovery (DNS included), is an unexpected-peer\n"
    "                         violation\n"
    "  --capture-mode MODE    namespace (the partner's own interface) or loopback (shared with\n"
    "                         the host's other processes); printed in the verdict line\n"
    "What must not leave (searched in every byte the partner sent, raw and decoded):\n"
    "  --canaries FILE        canary tokens, one per line (at least 8 bytes each)\n"
    "  --embeddings-db PATH   an SQLite gallery store file: no 16-byte run of any embedding it\n"
    "                         stores may leave\n"
    "  --config-gallery       the gallery store --config names (gallery.store: sqlite or\n"
    "                         postgresql), read like --embeddings-db\n"
    "  --embeddings-sql SQL   with --embeddings-db: PATH is any SQLite file (not a gallery\n"
    "                         store) and SQL selects the bytes (last column; first: a label)\n"
    "  --embeddings-hex FILE  stored bytes as hex, one string per line\n"
    "  --embeddings-f32 FILE  raw float32 embeddings, --embedding-dim values each (default 128)\n"
    "  --no-image-signatures  do not search for JPEG/PNG/WebP/GIF/TIFF/BMP headers\n"
    "What may leave:\n"
    "  --allow-types FILE     full protobuf names allowed to leave, one per line; without it only\n"
    "                         the declared type of each method is checked\n"
    "  --ledger PATH          the partner's egress ledger (SQLite) or a JSON list of\n"
    "                         {type, size, sha256}: the messages the partner sent as the server "
    "on\n"
    "                         --port must match it one-to-one and in order\n"
    "  --ledger-from-seq N    ignore ledger entries before seq N (older than the capture)\n"
    "  --descriptor-set FILE  extra services (protoc --include_imports --descriptor_set_out)\n"
    "  --packages LIST        comma-separated protobuf packages whose services are known\n"
    "                         (default fedface.v1)\n"
    "Output:\n"
    "  --json                 print the report as JSON instead of text\n"
    "  --json-out FILE        also write the JSON report to FILE\n"
    "  --max-violations N     list at most N violations (all are counted; default 500)\n";

// Pulls every `--name VALUE` / `--name=VALUE` of a repeatable flag out of args.
std::vector<std::string> TakeRepeated(std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> values;
  std::vector<std::string> rest;
  const std::string flag = "--" + name;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag && i + 1 < args.size()) {
      values.push_back(args[++i]);
    } else if (args[i].rfind(flag + "=", 0) == 0) {
      values.push_back(args[i].substr(flag.size() + 1));
    } else {
      rest.push_back(args[i]);
    }
  }
  args.swap(rest);
  return values;
}

absl::StatusOr<std::set<std::string>> LoadTypeList(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, uint64_t{16} << 20));
  std::set<std::string> types;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    const std::string name(absl::StripAsciiWhitespace(line));
    if (!name.empty() && name[0] != '#') types.insert(name);
  }
  return types;
}

int Fail(const absl::Status& status) {
  std::cerr << "partner_node audit: " << status.message() << "\n";
  return 1;
}

}  // namespace

int RunAudit(const std::vector<std::string>& raw_args) {
  std::vector<std::string> rest = raw_args;
  std::vector<std::string> pcaps = TakeRepeated(rest, "pcap");
  const std::vector<std::string> ip_texts = TakeRepeated(rest, "partner-ip");
  const std::vector<std::string> key_logs = TakeRepeated(rest, "tls-keylog");
  const std::vector<std::string> registry_ports = TakeRepeated(rest, "registry-port");
  const std::vector<std::string> allowed_peers = TakeRepeated(rest, "allow-peer");
  auto parsed = CliArgs::Parse(
      rest,
      {"port", "config", "canaries", "embeddings-db", "embeddings-sql", "embeddings-hex",
       "embeddings-f32", "embedding-dim", "allow-types", "ledger", "ledger-from-seq",
       "descriptor-set", "packages", "json-out", "max-violations", "capture-mode"},
      {"json", "no-image-signatures", "config-gallery", "help"});
  if (!parsed.ok()) {
    std::cerr << "partner_node audit: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  const CliArgs& args = *parsed;
  if (args.Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  for (const std::string& p : args.positionals()) pcaps.push_back(p);
  auto usage_error = [](const std::string& why) {
    std::cerr << "partner_node audit: " << why << "\n" << kUsage;
    return 2;
  };
  if (pcaps.empty()) return usage_error("give at least one --pcap FILE");
  auto port = args.GetInt("port", 0, 0, 65535);
  auto dim = args.GetInt("embedding-dim", 128, 4, 1 << 20);
  auto from_seq = args.GetInt("ledger-from-seq", 1, 1, INT64_MAX);
  auto max_violations = args.GetInt("max-violations", 500, 1, 1 << 30);
  for (const auto* v : {&port, &dim, &from_seq, &max_violations}) {
    if (!v->ok()) return usage_error(std::string(v->status().message()));
  }
  audit::AuditOptions options;
  options.partner_port = static_cast<uint16_t>(*port);
  for (const std::string& text : ip_texts) {
    auto ip = audit::IpAddress::Parse(text);
    if (!ip.ok()) return usage_error(absl::StrCat("--partner-ip: ", ip.status().message()));
    options.partner_ips.push_back(*ip);
  }
  for (const std::string& text : registry_ports) {
    int value = 0;
    if (!absl::SimpleAtoi(text, &value) || value < 1 || value > 65535) {
      return usage_error(absl::StrCat("--registry-port: '", text, "' is not a port (1..65535)"));
    }
    options.registry_ports.push_back(static_cast<uint16_t>(value));
  }
  if (options.partner_port == 0 && options.partner_ips.empty()) {
    return usage_error("give the partner's --port PORT and/or --partner-ip ADDR");
  }
  options.max_listed_violations = static_cast<size_t>(*max_violations);
  const std::string mode = args.GetOr("capture-mode", "unknown");
  if (mode == "namespace") {
    options.capture_mode = audit::CaptureMode::kNamespace;
  } else if (mode == "loopback") {
    options.capture_mode = audit::CaptureMode::kLoopback;
  } else if (mode != "unknown") {
    return usage_error("--capture-mode: expected namespace or loopback, got '" + mode + "'");
  }

  audit::LeakPatterns patterns;
  patterns.set_image_signatures(!args.Has("no-image-signatures"));
  if (auto path = args.Get("canaries")) {
    auto tokens = audit::LoadCanaries(*path);
    if (!tokens.ok()) return Fail(tokens.status());
    for (const std::string& t : *tokens) {
      if (absl::Status s = patterns.AddCanary(t); !s.ok()) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(*path, ": ", s.message())));
      }
    }
  }
  std::vector<absl::StatusOr<std::vector<audit::StoredBytes>>> stored;
  if (auto path = args.Get("embeddings-db"); path && args.Has("embeddings-sql")) {
    stored.push_back(audit::LoadStoredBytesFromSqlite(*path, *args.Get("embeddings-sql")));
  } else if (path) {
    stored.push_back(StoredEmbeddingsOf(SqliteGallerySpec(*path, /*must_exist=*/true)));
  }
  if (args.Has("config-gallery")) {
    auto config_path = args.Get("config");
    if (!config_path) return usage_error("--config-gallery reads the store of --config FILE");
    absl::StatusOr<Config> config = Config::Load(*config_path, PartnerConfigSchema());
    if (!config.ok()) return Fail(config.status());
    absl::StatusOr<GalleryStoreSpec> spec = GalleryStoreSpecFrom(*config, /*must_exist=*/true);
    if (!spec.ok()) return Fail(spec.status());
    stored.push_back(StoredEmbeddingsOf(*spec));
  }
  if (auto path = args.Get("embeddings-hex"))
    stored.push_back(audit::LoadStoredBytesHexList(*path));
  if (auto path = args.Get("embeddings-f32")) {
    stored.push_back(audit::LoadStoredBytesRaw(*path, static_cast<size_t>(*dim) * 4));
  }
  for (auto& list : stored) {
    if (!list.ok()) return Fail(list.status());
    for (audit::StoredBytes& s : *list) {
      if (absl::Status st = patterns.AddEmbedding(s.bytes, s.label); !st.ok()) return Fail(st);
    }
  }
  patterns.Seal();
  options.patterns = &patterns;

  std::vector<std::string> packages = audit::GrpcMethodCatalog::DefaultPackages();
  if (auto list = args.Get("packages")) {
    packages = absl::StrSplit(*list, ',', absl::SkipEmpty());
  }
  auto catalog = audit::GrpcMethodCatalog::FromLinkedProtos(packages);
  if (auto path = args.Get("descriptor-set")) {
    if (absl::Status s = catalog->AddDescriptorSet(*path, packages); !s.ok()) return Fail(s);
  }
  if (catalog->methods().empty()) {
    return Fail(absl::FailedPreconditionError(
        "no gRPC service of the given packages is known to this build; give --descriptor-set"));
  }
  options.catalog = catalog.get();
  if (auto path = args.Get("allow-types")) {
    auto types = LoadTypeList(*path);
    if (!types.ok()) return Fail(types.status());
    options.allowed_types = std::move(*types);
  }
  if (auto path = args.Get("ledger")) {
    auto ledger = audit::LoadLedger(*path, *from_seq);
    if (!ledger.ok()) return Fail(ledger.status());
    options.ledger = std::move(*ledger);
  }

  std::vector<std::string> key_log_paths = key_logs;
  std::optional<audit::PeerAllowlist> peers;
  if (!allowed_peers.empty()) peers.emplace();
  for (const std::string& text : allowed_peers) {
    if (absl::Status s = audit::AddAllowedPeer(text, &*peers); !s.ok()) {
      return usage_error(absl::StrCat("--allow-peer: ", s.message()));
    }
  }
  if (auto path = args.Get("config")) {
    absl::StatusOr<Config> config = Config::Load(*path, PartnerConfigSchema());
    if (!config.ok()) return Fail(config.status());
    // Layout-2 releases must state the noise this configuration implies (release_shape.h).
    absl::StatusOr<EgressSettings> egress = EgressSettingsFrom(*config);
    if (!egress.ok()) return Fail(egress.status());
    options.release_privacy = egress->guard.dp;
    if (key_log_paths.empty() && config->IsSet("audit.tls_key_log")) {
      key_log_paths.push_back(config->GetPath("audit.tls_key_log"));
    }
    if (!peers) peers.emplace();
    const std::string registry = config->GetString("vendor.address");
    if (absl::Status s =
            audit::AddOutgoingPeer(registry, absl::StrCat("vendor.address ", registry), &*peers);
        !s.ok()) {
      return Fail(
          absl::InvalidArgumentError(absl::StrCat(*path, ": vendor.address: ", s.message())));
    }
    const std::string listen = config->GetString("vendor_api.listen");
    // Port 0 (a free port picked at start) is not known here: --port gives the one bound.
    if (std::optional<uint16_t> port = audit::ListenPort(listen)) {
      peers->incoming_ports.insert(*port);
    }
  }
  if (peers && options.partner_port != 0) peers->incoming_ports.insert(options.partner_port);
  options.peers = std::move(peers);
  std::optional<audit::TlsKeyLog> tls_keys;
  if (!key_log_paths.empty()) {
    auto loaded = audit::TlsKeyLog::Load(key_log_paths);
    if (!loaded.ok()) return Fail(loaded.status());
    tls_keys = std::move(*loaded);
    options.tls_keys = &*tls_keys;
  }

  auto report = audit::AuditCaptures(pcaps, options);
  if (!report.ok()) return Fail(report.status());
  const std::string json = audit::FormatAuditJson(*report);
  if (auto path = args.Get("json-out")) {
    if (absl::Status s = WriteFileAtomically(*path, json); !s.ok()) return Fail(s);
  }
  std::cout << (args.Has("json") ? json : audit::FormatAuditText(*report));
  return report->passed() ? 0 : 1;
}

}  // namespace fedface::partner
