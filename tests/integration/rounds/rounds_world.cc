#include "tests/integration/rounds/rounds_world.h"

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/package/ed25519.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace fs = std::filesystem;

namespace {

// The vendor identity partners allow: the CN of the coordinator's client certificate.
constexpr char kVendorIdentity[] = "fedface-vendor";

std::string Tail(const std::string& text, std::size_t n = 3000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::string CertificateName(const std::string& partner) {
  return absl::StrCat(partner, ".partners.test");
}

}  // namespace

RoundsWorld::~RoundsWorld() {
  for (auto& [name, p] : partners_) {
    if (p.process && p.process->Running()) {
      p.process->Signal(SIGTERM);
      if (p.process->Wait(absl::Seconds(20)) == -1) p.process->Signal(SIGKILL);
    }
    std::error_code ec;
    if (!p.socket_dir.empty()) fs::remove_all(p.socket_dir, ec);
  }
  if (registry_) {
    registry_->process().Signal(SIGTERM);
    registry_->process().Wait(absl::Seconds(20));
  }
}

std::string RoundsWorld::Start(const std::vector<PartnerSpec>& partners) {
  const std::string package = TestPackageDir();
  const std::string key_path = TestVendorKey();
  if (package.empty() || key_path.empty()) return "the fixture's signed package is absent";
  pki_ = dir_ + "/pki";
  std::vector<std::string> names;
  for (const PartnerSpec& s : partners) names.push_back(s.name);
  // Each partner's server certificate also names NAME.partners.test (CertificateName).
  std::vector<std::string> addresses;
  for (const std::string& n : names) {
    addresses.push_back("--partner-address");
    addresses.push_back(absl::StrCat(n, "=", CertificateName(n)));
  }
  if (!MakeCertificates(pki_, names, addresses)) return "scripts/make_certs.sh failed";

  // The registry: 1.0.0 as the fixture made it, 1.1.0 re-signed with the same key.
  const std::string registry = dir_ + "/registry";
  fs::create_directories(registry);
  absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::LoadPem(key_path);
  if (!key.ok()) return std::string(key.status().message());
  if (!PublishCopy(package, registry + "/1.0.0", "", nullptr) ||
      !PublishCopy(package, registry + "/1.1.0", "1.1.0", &*key)) {
    return "cannot publish the test packages";
  }
  WriteText(dir_ + "/vendor.yaml",
            absl::StrCat("server:\n  listen: \"127.0.0.1:0\"\n  ca_cert: ", pki_,
                         "/ca.crt\n  cert: ", pki_, "/registry.crt\n  key: ", pki_,
                         "/registry.key\n  partners: [", absl::StrJoin(names, ", "),
                         "]\nregistry:\n  dir: ", registry,
                         "\n  chunk_bytes: 262144\n  test_delay_per_chunk_ms: 60\n"));
  registry_ = std::make_unique<VendorServer>(dir_ + "/vendor.yaml", dir_, "registry");
  registry_err_ = dir_ + "/vendor-registry.err";
  if (!registry_->WaitReady()) return "model_vendor serve did not start: " + Tail(RegistryLog());

  for (const PartnerSpec& s : partners) {
    Partner& p = partners_[s.name];
    p.spec = s;
    p.dir = dir_ + "/" + s.name;
    order_.push_back(s.name);
    if (std::string e = StartPartner(p); !e.empty()) return s.name + ": " + e;
  }
  return "";
}

std::string RoundsWorld::StartPartner(Partner& p) {
  const PartnerSpec& s = p.spec;
  fs::create_directories(p.dir + "/gallery");
  const std::string bbt = DatasetsDir() + "/faceapi-bbt/gallery";
  for (const std::string& subject : s.subjects) {
    std::error_code ec;
    fs::copy(bbt + "/" + subject, p.dir + "/gallery/" + subject, fs::copy_options::recursive, ec);
    if (ec) return absl::StrCat("cannot copy subject ", subject, ": ", ec.message());
  }
  // The local API on a Unix socket, in a short folder: socket paths are limited to ~100 bytes.
  p.socket_dir = MakeTempDir("sock");
  const std::string& socket_dir = p.socket_dir;
  if (socket_dir.empty()) return "cannot make a socket folder";
  const std::string config = PartnerConfigPath(s.name);
  WriteText(
      config,
      absl::StrCat(
          "vendor:\n  address: \"127.0.0.1:", registry_->port(), "\"\n  ca_cert: ", pki_,
          "/ca.crt\n  client_cert: ", pki_, "/partners/", s.name,
          "/client.crt\n  client_key: ", pki_, "/partners/", s.name,
          "/client.key\n  signing_key: ", TestVendorKey(), ".pub\nmodel_cache:\n  dir: ", p.dir,
          "/models\nvendor_api:\n  listen: "
          "\"127.0.0.1:0\"\n  ca_cert: ",
          pki_, "/ca.crt\n  cert: ", pki_, "/partners/", s.name, "/server.crt\n  key: ", pki_,
          "/partners/", s.name, "/server.key\n  allowed_vendors: [", kVendorIdentity,
          "]\nlocal_api:\n  listen: \"unix:", socket_dir, "/", s.name,
          ".sock\"\negress:\n  k_minimum: ", s.k_minimum,
          "\n  differential_privacy: ", s.dp_epsilon > 0 ? "true" : "false",
          s.dp_epsilon > 0 ? absl::StrCat("\n  epsilon_per_release: \"", s.dp_epsilon,
                                          "\"\n  epsilon_budget: \"", 100 * s.dp_epsilon, "\"")
                           : std::string(),
          "\ngallery:\n  dir: ", p.dir, "/gallery\nengine:\n  workers: 1\n"));
  const std::string node = PartnerNodeBinary();
  ProcessResult pull =
      RunProcess({node, "models", "pull", "--config", config, "--version", s.model_version}, p.dir);
  if (pull.exit_code != 0) return "models pull failed: " + Tail(pull.err);
  ProcessResult enroll =
      RunProcess({node, "enroll", "--config", config, "--gallery", p.dir + "/gallery"}, p.dir);
  if (enroll.exit_code != 0) return "enroll failed: " + Tail(enroll.out + enroll.err);

  const std::string out = p.dir + "/serve.out", err = p.dir + "/serve.err";
  p.process = std::make_unique<ChildProcess>(
      std::vector<std::string>{node, "serve", "--config", config}, out, err);
  static const std::regex kListening("vendor API on [^ ]*:([0-9]+)");
  const absl::Time end = absl::Now() + absl::Seconds(120);
  while (absl::Now() < end) {
    std::smatch m;
    const std::string text = ReadText(out);
    if (std::regex_search(text, m, kListening)) {
      p.vendor_port = std::stoi(m[1]);
      return "";
    }
    if (!p.process->Running()) return "serve exited: " + Tail(ReadText(err));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "serve did not print its address: " + Tail(ReadText(err));
}

std::string RoundsWorld::CoordinatorConfig(
    const std::string& name, const std::vector<std::string>& partners, int quorum,
    const std::map<std::string, std::string>& certificate_names,
    const std::map<std::string, std::string>& listeners) {
  std::string yaml = ReadText(dir_ + "/vendor.yaml");
  absl::StrAppend(&yaml, "coordinator:\n  partners:\n");
  for (const std::string& n : partners) {
    const auto listener = listeners.find(n);
    const auto it = partners_.find(listener == listeners.end() ? n : listener->second);
    const int port = it == partners_.end() ? 1 : it->second.vendor_port;
    const auto name_it = certificate_names.find(n);
    absl::StrAppend(&yaml, "    - \"", n, " 127.0.0.1:", port, " ",
                    name_it == certificate_names.end() ? CertificateName(n) : name_it->second,
                    "\"\n");
  }
  absl::StrAppend(&yaml, "  client_cert: ", pki_, "/coordinator.crt\n  client_key: ", pki_,
                  "/coordinator.key\n  quorum: ", quorum,
                  "\n  call_deadline_seconds: 300\n  round_deadline_seconds: 900\n"
                  "  max_attempts: 3\n  initial_backoff_ms: 300\n  max_backoff_ms: 1000\n"
                  "  rounds_db: ",
                  dir_, "/rounds.db\n");
  const std::string path = absl::StrCat(dir_, "/", name, ".yaml");
  WriteText(path, yaml);
  return path;
}

ProcessResult RoundsWorld::Vendor(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ModelVendorBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, dir_);
}

std::unique_ptr<ChildProcess> RoundsWorld::StartVendor(const std::vector<std::string>& args,
                                                       const std::string& tag) {
  std::vector<std::string> argv = {ModelVendorBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<ChildProcess>(argv, dir_ + "/" + tag + ".out", dir_ + "/" + tag + ".err");
}

void RoundsWorld::KillPartner(const std::string& name) {
  Partner& p = partners_.at(name);
  p.process->Signal(SIGKILL);
  p.process->Wait(absl::Seconds(30));
}

bool RoundsWorld::PartnerRunning(const std::string& name) {
  return partners_.at(name).process->Running();
}

std::string RoundsWorld::PartnerLog(const std::string& name) const {
  return ReadText(dir_ + "/" + name + "/serve.err");
}

}  // namespace fedface::testing
