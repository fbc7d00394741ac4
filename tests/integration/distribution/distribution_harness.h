// Real processes for the distribution tests: model_vendor serve and partner_node models, run
// from the binaries ctest names (FEDFACE_MODEL_VENDOR, FEDFACE_PARTNER_NODE), with certificates
// from scripts/make_certs.sh and packages derived from the fixture's signed test package.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/package/ed25519.h"
#include "tests/support/child_process.h"

namespace fedface::testing {

// `model_vendor serve --config CONFIG`, waited for until it prints its listening address.
class VendorServer {
 public:
  // `tag` names the log files (work_dir/vendor-TAG.{out,err}).
  VendorServer(const std::string& config, const std::string& work_dir, const std::string& tag);
  // True once the server printed its address (within 60 s); false when it exited or hung.
  bool WaitReady();
  int port() const { return port_; }
  std::string log() const { return ReadText(err_path_); }
  void Kill9() {
    process_.Signal(9);
    process_.Wait(absl::Seconds(30));
  }
  ChildProcess& process() { return process_; }

 private:
  std::string out_path_, err_path_;
  ChildProcess process_;
  int port_ = 0;
};

// The binaries under test and the PKI script.
std::string ModelVendorBinary();
std::string PartnerNodeBinary();
std::string MakeCertsScript();

// Runs scripts/make_certs.sh OUT --dev EXTRA... PARTNERS... (a loopback development set: every
// server certificate also names localhost, 127.0.0.1 and ::1); true on success.
bool MakeCertificates(const std::string& out, const std::vector<std::string>& partners,
                      const std::vector<std::string>& extra_args = {});

// Runs `openssl` to issue a certificate signed by pki/ca.{crt,key} that make_certs.sh would not
// make (tests of role and identity checks): CN=`cn`, the given extended key usage ("serverAuth"
// or "clientAuth") and subjectAltName (may be empty). Writes out_base.key (0600) and
// out_base.crt (random serial: nothing in `pki` is written). True on success.
bool IssueCertificate(const std::string& pki, const std::string& out_base, const std::string& cn,
                      const std::string& usage, const std::string& subject_alt_names);

// Copies a package folder to `dst` and, when `version` is not empty, rewrites its manifest with
// that version and signs it with `key` (so the copy is a valid package of another version).
bool PublishCopy(const std::string& src, const std::string& dst, const std::string& version,
                 const Ed25519PrivateKey* key);

// Vendor and partner configuration text for a test world: the registry's certificate
// (registry.crt) and partner PARTNER's client certificate (partners/PARTNER/client.crt).
std::string VendorConfigYaml(const std::string& pki, const std::string& registry,
                             const std::string& listen, const std::string& extra_registry_keys);
std::string PartnerConfigYaml(const std::string& address, const std::string& pki,
                              const std::string& partner, const std::string& signing_key_pub,
                              const std::string& cache_dir);

}  // namespace fedface::testing
