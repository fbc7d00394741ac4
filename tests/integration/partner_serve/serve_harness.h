// Real processes for the partner_node serve tests: a partner with an installed model (the
// fixture's signed test package as version 1.0.0), a gallery enrolled by `partner_node enroll`
// from the faceapi-bbt photographs plus synthetic subjects, certificates from
// scripts/make_certs.sh, `partner_node serve` as a child process, and a vendor-side client that
// calls the evaluation service RAW, so the test sees the exact bytes that crossed the wire.
//
// Certificates (one make_certs.sh development PKI): partners/acme/server.crt (names localhost,
// 127.0.0.1, ::1) is the partner's vendor-facing listener certificate, coordinator.crt the
// vendor's client certificate (CN=fedface-vendor, the name the partner allows),
// partners/intruder/client.crt a valid client certificate of a vendor not allowed, and
// partners/acme/client.crt the partner's own client certificate towards the vendor's registry.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/distribution/distribution_harness.h"

namespace fedface::testing {

// What the suite prepares once (empty strings when data is missing: tests then skip).
struct ServeFixture {
  std::string root;         // the suite's folder
  std::string pki;          // make_certs.sh output
  std::string signing_key;  // the pinned vendor public key (PEM)
  std::string vendor_key;   // its private key (for publishing another version)
  std::string cache;        // model cache with 1.0.0 active
  std::string gallery_dir;  // DIR/<subject>/<images>: 8 real + 8 synthetic subjects
  std::string gallery_db;   // that folder enrolled with 1.0.0 (a template: copy it)
  std::string skip_reason;  // non-empty: data is missing, the suite skips
  std::string error;        // non-empty: setting up failed, the suite fails
};

// Builds the fixture once per process (enrols the gallery with real `partner_node enroll`).
const ServeFixture& GetServeFixture();

// Per-test settings of the partner's configuration.
struct PartnerSettings {
  int k_minimum = 10;
  bool differential_privacy = true;
  std::string epsilon_budget = "10";
  bool require_approval = false;
  bool tls = true;
  std::vector<std::string> allowed_vendors = {"fedface-vendor"};
  std::string registry_address = "127.0.0.1:1";  // nothing listens: model pulls fail
  std::string cache;                             // "" = the fixture's (shared, read-only use)
  bool with_gallery_dir = true;                  // gallery.dir (re-embedding) set
  bool evaluate_other_versions = true;
  int64_t max_reembed_images_per_round = -1;  // -1: the configuration's default
  int64_t max_reembed_images_per_day = -1;    // -1: the configuration's default
  int64_t rate_limit_replays = -1;            // vendor_api.rate_limit.replays; -1: default
  // Path without .crt/.key of the listener's certificate; "" = pki/partners/acme/server.
  std::string listener_certificate;
};

// A test's own partner: a copy of the template gallery, its own ledger, budget and held store.
struct PartnerWorld {
  std::string dir;
  std::string config;  // path of the YAML file
  std::string ledger;
  std::string budget;
  std::string held;
};
PartnerWorld MakePartnerWorld(const std::string& tag, const PartnerSettings& settings);

// Image files in the fixture's gallery folder (what a re-embedding of it processes).
int GalleryImageCount();

// A copy of the fixture's model cache (for a test that changes the active version).
std::string CopyOfModelCache(const std::string& dir);

// `partner_node serve --config CONFIG` as a child process.
class PartnerServer {
 public:
  // `prefix` (may be empty) runs before the binary, e.g. {"/usr/bin/prlimit", "--nofile=256:4096"}.
  PartnerServer(const PartnerWorld& world, const std::string& tag,
                const std::vector<std::string>& prefix = {});
  // True once the start-up line was printed (within 120 s).
  bool WaitReady();
  int vendor_port() const { return vendor_port_; }
  const std::string& local_address() const { return local_address_; }
  pid_t pid() const { return process_.pid(); }
  std::string startup_line() const;
  std::string log() const;  // stderr so far
  // SIGTERM and wait; the exit code (0 for a graceful stop).
  int Stop();

 private:
  std::string out_path_, err_path_;
  ChildProcess process_;
  int vendor_port_ = 0;
  std::string local_address_;
};

// The vendor's channel to the partner: mutual TLS with CLIENT.crt/.key (a path without the
// extension, relative to `pki` unless absolute: "coordinator", "partners/intruder/client"), or
// TLS without a client certificate when client is "", or plaintext when plaintext is true.
std::shared_ptr<grpc::Channel> VendorChannel(const std::string& pki, int port,
                                             const std::string& client, bool plaintext = false);

// Base of the tests on a serving partner: the shared fixture (skipped, or failed under CI=true,
// when it could not be built) and the coordinator's channel to a partner's vendor port.
class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  std::shared_ptr<grpc::Channel> Vendor(int port) {
    return VendorChannel(pki_, port, "coordinator");
  }
  std::string pki_;
};

// A unary call with raw bytes both ways.
struct RawReply {
  grpc::Status status;
  std::string bytes;
};
// wait_for_ready: wait for a listener being rebuilt (a dead one ends in DEADLINE_EXCEEDED);
// gzip: the request is compressed (the partner must refuse it before inflating).
struct RawCallOptions {
  bool wait_for_ready = false;
  bool gzip = false;
};
RawReply CallRaw(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                 const std::string& request, int deadline_seconds = 300,
                 RawCallOptions options = {});

inline constexpr char kRunEvaluation[] = "/fedface.v1.EvaluationService/RunEvaluation";

// A RunEvaluationRequest the partner answers: verification, model 1.0.0, seed 7, this round id.
std::string VerificationRequestBytes(const std::string& round);

}  // namespace fedface::testing
