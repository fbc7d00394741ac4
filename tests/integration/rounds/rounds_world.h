// A vendor and several partners as real processes on loopback, for evaluation-round tests:
//   - a development PKI from scripts/make_certs.sh: the registry's server certificate, the
//     coordinator's client certificate (CN=fedface-vendor), and per partner a client certificate
//     towards the registry and a server certificate for its vendor-facing listener (CN=NAME;
//     names NAME.partners.test, localhost, 127.0.0.1, ::1);
//   - `model_vendor serve` with the fixture's signed package as 1.0.0 and a re-signed copy as
//     1.1.0, its weights download throttled so that a partner pulling a model stays busy;
//   - per partner: `partner_node models pull`, `partner_node enroll` of a gallery built from
//     the faceapi-bbt photos (subjects chosen per partner; also gallery.dir, so a partner can
//     embed it with another version when a round asks to evaluate one), then
//     `partner_node serve`;
//   - the coordinator's configuration (the vendor file plus coordinator.*), for
//     `model_vendor round` and `model_vendor rounds`.
// Logs of every process stay in the world's folder (kept as test artefacts).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/distribution/distribution_harness.h"

namespace fedface::testing {

struct PartnerSpec {
  std::string name;
  std::vector<std::string> subjects;  // faceapi-bbt gallery subjects to enrol
  std::string model_version;          // pulled and activated before enrolment
  int k_minimum = 5;
  double dp_epsilon = 0;  // > 0: differential privacy on, this epsilon per release
};

class RoundsWorld {
 public:
  // Everything under `dir`. Call Start() and check it.
  explicit RoundsWorld(std::string dir) : dir_(std::move(dir)) {}
  ~RoundsWorld();

  // Makes the PKI, the registry and starts the vendor server, then each partner (pull, enrol,
  // serve). Returns "" on success, else what failed (with the log's tail).
  std::string Start(const std::vector<PartnerSpec>& partners);

  // The vendor config with coordinator.* for `partners` (in that order) and the given quorum.
  // Each partner's expected certificate name is NAME.partners.test (what its certificate
  // carries) unless `certificate_names` says otherwise; each partner's address is its own
  // listener unless `listeners` names another partner whose listener is given instead. Written
  // to dir/NAME.yaml; returns its path.
  std::string CoordinatorConfig(const std::string& name, const std::vector<std::string>& partners,
                                int quorum,
                                const std::map<std::string, std::string>& certificate_names = {},
                                const std::map<std::string, std::string>& listeners = {});

  // Runs `model_vendor ARGS...` to completion.
  ProcessResult Vendor(const std::vector<std::string>& args);

  // A child `model_vendor ARGS...` (stdout/stderr to dir/TAG.out / TAG.err), not waited for.
  std::unique_ptr<ChildProcess> StartVendor(const std::vector<std::string>& args,
                                            const std::string& tag);

  // SIGKILLs partner `name` and waits for it.
  void KillPartner(const std::string& name);
  bool PartnerRunning(const std::string& name);

  std::string RegistryLog() const { return ReadText(registry_err_); }
  std::string PartnerLog(const std::string& name) const;
  const std::string& dir() const { return dir_; }
  std::string PartnerConfigPath(const std::string& name) const {
    return dir_ + "/" + name + "/partner.yaml";
  }

 private:
  struct Partner {
    PartnerSpec spec;
    std::string dir;
    std::unique_ptr<ChildProcess> process;
    int vendor_port = 0;
    std::string socket_dir;  // short temporary folder of the local API's socket
  };
  std::string StartPartner(Partner& p);

  std::string dir_;
  std::string pki_;
  std::unique_ptr<VendorServer> registry_;
  std::string registry_err_;
  std::map<std::string, Partner> partners_;
  std::vector<std::string> order_;
};

}  // namespace fedface::testing
