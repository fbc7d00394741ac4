#include "tests/integration/distribution/distribution_harness.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/package/model_manifest.h"
#include "tests/support/test_env.h"

extern char** environ;

namespace fedface::testing {
namespace fs = std::filesystem;

VendorServer::VendorServer(const std::string& config, const std::string& work_dir,
                           const std::string& tag)
    : out_path_(absl::StrCat(work_dir, "/vendor-", tag, ".out")),
      err_path_(absl::StrCat(work_dir, "/vendor-", tag, ".err")),
      process_({ModelVendorBinary(), "serve", "--config", config}, out_path_, err_path_) {}

bool VendorServer::WaitReady() {
  static const std::regex kListening("listening on [^ ]*:([0-9]+)");
  const absl::Time end = absl::Now() + absl::Seconds(60);
  while (absl::Now() < end) {
    std::smatch m;
    const std::string out = ReadText(out_path_);
    if (std::regex_search(out, m, kListening)) {
      port_ = std::stoi(m[1]);
      return true;
    }
    if (!process_.Running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string ModelVendorBinary() { return Env("FEDFACE_MODEL_VENDOR"); }
std::string PartnerNodeBinary() { return Env("FEDFACE_PARTNER_NODE"); }
std::string MakeCertsScript() { return Env("FEDFACE_SOURCE_DIR") + "/scripts/make_certs.sh"; }

bool MakeCertificates(const std::string& out, const std::vector<std::string>& partners,
                      const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {"/bin/bash", MakeCertsScript(), out, "--dev"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.insert(argv.end(), partners.begin(), partners.end());
  return RunProcess(argv, fs::temp_directory_path().string()).exit_code == 0;
}

bool IssueCertificate(const std::string& pki, const std::string& out_base, const std::string& cn,
                      const std::string& usage, const std::string& subject_alt_names) {
  const std::string ext = out_base + ".ext";
  WriteText(ext, absl::StrCat("basicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature\nextendedKeyUsage=",
                              usage, "\n",
                              subject_alt_names.empty()
                                  ? std::string()
                                  : absl::StrCat("subjectAltName=", subject_alt_names, "\n")));
  const std::string script = absl::StrCat(
      "set -e; umask 077; "
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '",
      out_base, ".key' 2>/dev/null; openssl req -new -key '", out_base,
      ".key' -subj '/O=fedface test/CN=", cn, "' -out '", out_base,
      ".csr' 2>/dev/null; openssl x509 -req -in '", out_base, ".csr' -CA '", pki,
      "/ca.crt' -CAkey '", pki, "/ca.key' -set_serial 0x$(openssl rand -hex 8) -days 30 ",
      "-sha256 -extfile '", ext, "' -out '", out_base, ".crt' 2>/dev/null; chmod 644 '", out_base,
      ".crt'");
  return RunProcess({"/bin/sh", "-c", script}, fs::path(out_base).parent_path().string())
             .exit_code == 0;
}

bool PublishCopy(const std::string& src, const std::string& dst, const std::string& version,
                 const Ed25519PrivateKey* key) {
  std::error_code ec;
  fs::copy(src, dst, fs::copy_options::recursive, ec);
  if (ec) return false;
  if (version.empty()) return true;
  absl::StatusOr<std::string> bytes = ReadFile(dst + "/" + kManifestFile);
  if (!bytes.ok()) return false;
  absl::StatusOr<ModelManifest> manifest = ParseManifest(*bytes, dst);
  if (!manifest.ok() || key == nullptr) return false;
  manifest->version = version;
  manifest->signing_key_id = key->key_id();
  const std::string json = SerializeManifest(*manifest);
  absl::StatusOr<std::string> sig = key->Sign(json);
  if (!sig.ok()) return false;
  return WriteFileAtomically(dst + "/" + kManifestFile, json).ok() &&
         WriteFileAtomically(dst + "/" + kSignatureFile, *sig).ok();
}

std::string VendorConfigYaml(const std::string& pki, const std::string& registry,
                             const std::string& listen, const std::string& extra_registry_keys) {
  return absl::StrCat("server:\n  listen: \"", listen, "\"\n  ca_cert: ", pki,
                      "/ca.crt\n  cert: ", pki, "/registry.crt\n  key: ", pki,
                      "/registry.key\n  partners: [acme, globex]\nregistry:\n  dir: ", registry,
                      "\n", extra_registry_keys);
}

std::string PartnerConfigYaml(const std::string& address, const std::string& pki,
                              const std::string& partner, const std::string& signing_key_pub,
                              const std::string& cache_dir) {
  return absl::StrCat(
      "vendor:\n  address: \"", address, "\"\n  ca_cert: ", pki, "/ca.crt\n  client_cert: ", pki,
      "/partners/", partner, "/client.crt\n  client_key: ", pki, "/partners/", partner,
      "/client.key\n  signing_key: ", signing_key_pub, "\nmodel_cache:\n  dir: ", cache_dir, "\n");
}

}  // namespace fedface::testing
