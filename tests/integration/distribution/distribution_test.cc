// Model distribution end to end: model_vendor serve and partner_node models pull/list/activate
// as real processes over loopback mutual TLS, with certificates from scripts/make_certs.sh and
// packages derived from the fixture's real signed package.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/package/ed25519.h"
#include "fedface/v1/model_registry.grpc.pb.h"
#include "tests/integration/distribution/distribution_harness.h"
#include "tests/support/test_env.h"

namespace fedface::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class DistributionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    package_ = TestPackageDir();
    FEDFACE_SKIP_IF_MISSING(package_, "the signed test package");
    FEDFACE_SKIP_IF_MISSING(TestVendorKey(), "the test vendor key");
    ASSERT_FALSE(ModelVendorBinary().empty() || PartnerNodeBinary().empty())
        << "FEDFACE_MODEL_VENDOR / FEDFACE_PARTNER_NODE are not set";
    absl::StatusOr<Ed25519PrivateKey> key = Ed25519PrivateKey::LoadPem(TestVendorKey());
    ASSERT_TRUE(key.ok()) << key.status();
    vendor_key_ = std::make_unique<Ed25519PrivateKey>(*std::move(key));
    dir_ = MakeTempDir("distribution");
    ASSERT_FALSE(dir_.empty());
    pki_ = dir_ + "/pki";
    ASSERT_TRUE(MakeCertificates(pki_, {"acme", "globex", "evil"}));
    registry_ = dir_ + "/registry";
    fs::create_directories(registry_);
    ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.0.0", "", nullptr));
    cache_ = dir_ + "/cache";
    source_weights_sha_ = *Sha256HexOfFile(package_ + "/weights.dat");
  }

  // Starts `model_vendor serve` on `listen` with extra registry.* lines, and waits until ready.
  std::unique_ptr<VendorServer> StartVendor(const std::string& listen = "127.0.0.1:0",
                                            const std::string& extra = "",
                                            const std::string& tag = "main") {
    const std::string config = absl::StrCat(dir_, "/vendor-", tag, ".yaml");
    WriteText(config, VendorConfigYaml(pki_, registry_, listen, extra));
    auto server = std::make_unique<VendorServer>(config, dir_, tag);
    EXPECT_TRUE(server->WaitReady()) << server->log();
    return server;
  }

  // Writes the partner's config for `partner` against the vendor on `port`; returns its path.
  std::string PartnerConfig(int port, const std::string& partner = "acme",
                            const std::string& extra = "", const std::string& pki = "") {
    const std::string config = absl::StrCat(dir_, "/partner-", partner, ".yaml");
    WriteText(config, PartnerConfigYaml(absl::StrCat("127.0.0.1:", port), pki.empty() ? pki_ : pki,
                                        partner, TestVendorKey() + ".pub", cache_) +
                          extra);
    return config;
  }

  ProcessResult Models(const std::string& config, std::vector<std::string> args) {
    std::vector<std::string> argv = {PartnerNodeBinary(), "models"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--config");
    argv.push_back(config);
    return RunProcess(argv, dir_);
  }

  std::string Active() { return ReadText(cache_ + "/active"); }

  // Pulls 1.0.0 so that later refusals have an active model to leave untouched.
  void InstallBaseline(const std::string& config) {
    ProcessResult r = Models(config, {"pull", "--version", "1.0.0"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(Active(), "1.0.0\n");
  }

  // The refusal contract: exit 1, one line on stderr naming the version, active unchanged,
  // nothing installed or left staged.
  void ExpectRefusedAndUntouched(const ProcessResult& r, const std::string& version) {
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("refused version " + version));
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("active model stays 1.0.0"));
    EXPECT_EQ(Active(), "1.0.0\n");
    EXPECT_FALSE(fs::exists(cache_ + "/" + version));
    for (const auto& entry : fs::directory_iterator(cache_)) {
      EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr(".staging-")));
    }
  }

  std::string package_, dir_, pki_, registry_, cache_, source_weights_sha_;
  std::unique_ptr<Ed25519PrivateKey> vendor_key_;
};

TEST_F(DistributionTest, PartnerPullsVerifiesAndActivatesPackage) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  const auto start = std::chrono::steady_clock::now();
  ProcessResult r = Models(config, {"pull"});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(Active(), "1.0.0\n");
  EXPECT_EQ(*Sha256HexOfFile(cache_ + "/1.0.0/weights.dat"), source_weights_sha_);
  EXPECT_EQ(ReadText(cache_ + "/1.0.0/manifest.json"), ReadText(package_ + "/manifest.json"));
  EXPECT_EQ(ReadText(cache_ + "/1.0.0/manifest.sig"), ReadText(package_ + "/manifest.sig"));
  EXPECT_THAT(r.out, HasSubstr("self-test max distance"));
  EXPECT_THAT(vendor->log(), HasSubstr("download partner=acme version=1.0.0 complete"));
  EXPECT_TRUE(fs::is_empty(cache_ + "/.partial"));
  ProcessResult list = Models(config, {"list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("* 1.0.0"));
  std::cout << "[figure] pull+verify+activate of " << fs::file_size(package_ + "/weights.dat")
            << " weight bytes: " << seconds << " s (process start to exit); " << r.out;
  // SIGTERM stops the server cleanly.
  vendor->process().Signal(SIGTERM);
  EXPECT_EQ(vendor->process().Wait(absl::Seconds(30)), 0);
}

TEST_F(DistributionTest, KeepsEarlierVersionsAndActivatesOneAgain) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.1.0", "1.1.0", vendor_key_.get()));
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.10.0", "1.10.0", vendor_key_.get()));

  ProcessResult newest = Models(config, {"pull"});  // 1.10.0 is newer than 1.1.0
  ASSERT_EQ(newest.exit_code, 0) << newest.err;
  EXPECT_EQ(Active(), "1.10.0\n");
  EXPECT_THAT(newest.out, HasSubstr("(was 1.0.0)"));
  EXPECT_TRUE(fs::exists(cache_ + "/1.0.0/weights.dat"));

  ProcessResult rollback = Models(config, {"activate", "1.0.0", "--allow-downgrade"});
  ASSERT_EQ(rollback.exit_code, 0) << rollback.err;
  EXPECT_EQ(Active(), "1.0.0\n");
  ProcessResult list = Models(config, {"list"});
  EXPECT_THAT(list.out, HasSubstr("* 1.0.0"));
  EXPECT_THAT(list.out, HasSubstr("  1.10.0"));

  // A pinned version wins over the newest one.
  const std::string pinned = PartnerConfig(vendor->port(), "acme", "  pinned_version: \"1.1.0\"\n");
  ProcessResult pin = Models(pinned, {"pull"});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(Active(), "1.1.0\n");

  // Activating a version that is not installed is refused.
  ProcessResult missing = Models(config, {"activate", "9.9.9"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("not installed"));
  EXPECT_EQ(Active(), "1.1.0\n");
}

TEST_F(DistributionTest, ActivateRefusesAnOlderVersionUnlessDowngradeIsAllowed) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.2.0", "1.2.0", vendor_key_.get()));
  ASSERT_EQ(Models(config, {"pull", "--version", "1.2.0"}).exit_code, 0);
  ASSERT_EQ(Active(), "1.2.0\n");

  ProcessResult refused = Models(config, {"activate", "1.0.0"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_EQ(refused.err,
            "models activate: refused version 1.0.0: it is older than the active version 1.2.0 "
            "(pass --allow-downgrade to roll back); active model stays 1.2.0\n");
  EXPECT_EQ(refused.out, "");
  EXPECT_EQ(Active(), "1.2.0\n");

  ProcessResult allowed = Models(config, {"activate", "1.0.0", "--allow-downgrade"});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  EXPECT_EQ(Active(), "1.0.0\n");
  EXPECT_THAT(allowed.out, HasSubstr("active: 1.0.0 (was 1.2.0, downgrade allowed); verified"));
  EXPECT_EQ(std::count(allowed.out.begin(), allowed.out.end(), '\n'), 1) << allowed.out;

  // Forward needs no flag; the flag belongs to activate only.
  ProcessResult forward = Models(config, {"activate", "1.2.0"});
  ASSERT_EQ(forward.exit_code, 0) << forward.err;
  EXPECT_THAT(forward.out, HasSubstr("active: 1.2.0 (was 1.0.0); verified"));
  EXPECT_EQ(Models(config, {"pull", "--allow-downgrade"}).exit_code, 2);
}

TEST_F(DistributionTest, ActivateRefusesInstalledVersionDamagedOnDisk) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/0.9.0", "0.9.0", vendor_key_.get()));
  ASSERT_EQ(Models(config, {"pull", "--version", "0.9.0"}).exit_code, 0);
  InstallBaseline(config);
  {  // flip one byte of the installed 0.9.0 weights
    std::fstream f(cache_ + "/0.9.0/weights.dat", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    f.put('\x5a');
  }
  ProcessResult r = Models(config, {"activate", "0.9.0", "--allow-downgrade"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("sha256"));
  EXPECT_EQ(Active(), "1.0.0\n");
}

TEST_F(DistributionTest, RefusesTamperedWeightsAndKeepsActiveModel) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.1.0", "1.1.0", vendor_key_.get()));
  {
    const std::string weights = registry_ + "/1.1.0/weights.dat";
    std::fstream f(weights, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(fs::file_size(weights) / 2));
    const char c = static_cast<char>(f.peek());
    f.seekp(static_cast<std::streamoff>(fs::file_size(weights) / 2));
    f.put(static_cast<char>(c ^ 0x01));
  }
  ProcessResult r = Models(config, {"pull"});
  ExpectRefusedAndUntouched(r, "1.1.0");
  EXPECT_THAT(r.err, HasSubstr("sha256"));
}

TEST_F(DistributionTest, RefusesManifestSwappedBetweenVersions) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  // 1.1.0 serves 1.0.0's (validly signed) manifest: a replayed or downgraded package.
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.1.0", "1.1.0", vendor_key_.get()));
  fs::copy_file(package_ + "/manifest.json", registry_ + "/1.1.0/manifest.json",
                fs::copy_options::overwrite_existing);
  fs::copy_file(package_ + "/manifest.sig", registry_ + "/1.1.0/manifest.sig",
                fs::copy_options::overwrite_existing);
  ProcessResult whole = Models(config, {"pull", "--version", "1.1.0"});
  ExpectRefusedAndUntouched(whole, "1.1.0");
  EXPECT_THAT(whole.err, HasSubstr("swapped"));

  // 1.2.0's manifest with 1.1.0's signature: the signature does not verify.
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.2.0", "1.2.0", vendor_key_.get()));
  ASSERT_TRUE(PublishCopy(package_, dir_ + "/other-1.3.0", "1.3.0", vendor_key_.get()));
  fs::copy_file(dir_ + "/other-1.3.0/manifest.sig", registry_ + "/1.2.0/manifest.sig",
                fs::copy_options::overwrite_existing);
  ProcessResult sig = Models(config, {"pull", "--version", "1.2.0"});
  ExpectRefusedAndUntouched(sig, "1.2.0");
  EXPECT_THAT(sig.err, HasSubstr("signature"));
  EXPECT_THAT(vendor->log(), Not(HasSubstr("download partner=acme version=1.2.0")));
}

TEST_F(DistributionTest, RefusesPackageSignedByAnotherKey) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  absl::StatusOr<Ed25519PrivateKey> other = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.1.0", "1.1.0", &*other));
  ProcessResult r = Models(config, {"pull"});
  ExpectRefusedAndUntouched(r, "1.1.0");
  EXPECT_THAT(r.err, HasSubstr("another key"));
  // Refused on the manifest, before a single weight byte was asked for.
  EXPECT_THAT(vendor->log(), Not(HasSubstr("download partner=acme version=1.1.0")));
}

TEST_F(DistributionTest, RefusesTruncatedStream) {
  auto vendor = StartVendor();
  const std::string config = PartnerConfig(vendor->port());
  InstallBaseline(config);
  ASSERT_TRUE(PublishCopy(package_, registry_ + "/1.1.0", "1.1.0", vendor_key_.get()));
  // The vendor streams what its file holds and ends the stream cleanly: half the weights.
  const std::string weights = registry_ + "/1.1.0/weights.dat";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  ProcessResult r = Models(config, {"pull"});
  ExpectRefusedAndUntouched(r, "1.1.0");
  EXPECT_THAT(r.err, HasSubstr("stream ended at byte"));
}

TEST_F(DistributionTest, ResumesAfterVendorKilledMidDownload) {
  // 64 KiB chunks, 20 ms apart: ~7 s for the ~22 MB weights, time enough to kill the vendor.
  auto vendor =
      StartVendor("127.0.0.1:0", "  chunk_bytes: 65536\n  test_delay_per_chunk_ms: 20\n", "slow");
  const int port = vendor->port();
  const std::string config = PartnerConfig(port);
  const std::string partial = absl::StrCat(cache_, "/.partial/", source_weights_sha_, ".weights");
  const uint64_t total = fs::file_size(package_ + "/weights.dat");

  ChildProcess pull({PartnerNodeBinary(), "models", "pull", "--config", config},
                    dir_ + "/pull1.out", dir_ + "/pull1.err");
  const absl::Time end = absl::Now() + absl::Seconds(120);
  std::error_code ec;
  while (absl::Now() < end && pull.Running() &&
         (!fs::exists(partial, ec) || fs::file_size(partial, ec) < (uint64_t{2} << 20))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(pull.Running()) << ReadText(dir_ + "/pull1.err");
  // While it runs, the cache is locked: a second pull or an activation is refused at once.
  ProcessResult second = Models(config, {"pull"});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_THAT(second.err, HasSubstr("another pull or activation is running"));
  vendor->Kill9();
  EXPECT_EQ(pull.Wait(absl::Seconds(60)), 1);
  EXPECT_THAT(ReadText(dir_ + "/pull1.err"), HasSubstr("the next pull resumes"));
  EXPECT_FALSE(fs::exists(cache_ + "/active"));
  const uint64_t held = fs::file_size(partial);
  ASSERT_GT(held, 0u);
  ASSERT_LT(held, total);

  // The vendor comes back on the same port, at full speed; the partner continues.
  auto restarted = StartVendor(absl::StrCat("127.0.0.1:", port), "", "restarted");
  ProcessResult r = Models(config, {"pull"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("resuming at byte ", held)));
  EXPECT_THAT(restarted->log(),
              HasSubstr(absl::StrCat("download partner=acme version=1.0.0 start offset=", held)));
  EXPECT_EQ(Active(), "1.0.0\n");
  EXPECT_EQ(ReadText(cache_ + "/1.0.0/weights.dat"), ReadText(package_ + "/weights.dat"));
  EXPECT_FALSE(fs::exists(partial));
  std::cout << "[figure] killed the vendor at byte " << held << " of " << total
            << "; the second pull fetched " << total - held << " bytes\n";
}

TEST_F(DistributionTest, ResumesAfterPartnerKilledMidDownload) {
  auto vendor =
      StartVendor("127.0.0.1:0", "  chunk_bytes: 65536\n  test_delay_per_chunk_ms: 20\n", "slow");
  const std::string config = PartnerConfig(vendor->port());
  const std::string partial = absl::StrCat(cache_, "/.partial/", source_weights_sha_, ".weights");
  ChildProcess pull({PartnerNodeBinary(), "models", "pull", "--config", config},
                    dir_ + "/pull1.out", dir_ + "/pull1.err");
  const absl::Time end = absl::Now() + absl::Seconds(120);
  std::error_code ec;
  while (absl::Now() < end && pull.Running() &&
         (!fs::exists(partial, ec) || fs::file_size(partial, ec) < (uint64_t{1} << 20))) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(pull.Running()) << ReadText(dir_ + "/pull1.err");
  pull.Signal(SIGKILL);
  pull.Wait(absl::Seconds(30));
  const uint64_t held = fs::file_size(partial);
  ASSERT_GT(held, 0u);
  EXPECT_FALSE(fs::exists(cache_ + "/active"));

  ProcessResult r = Models(config, {"pull"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("resuming at byte "));
  EXPECT_EQ(Active(), "1.0.0\n");
  EXPECT_EQ(ReadText(cache_ + "/1.0.0/weights.dat"), ReadText(package_ + "/weights.dat"));
}

TEST_F(DistributionTest, RefusesPartnerNotInAllowlist) {
  auto vendor = StartVendor();
  ProcessResult r = Models(PartnerConfig(vendor->port(), "evil"), {"pull"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("partner 'evil' is not allowed"));
  EXPECT_THAT(vendor->log(), HasSubstr("refused ListModels from partner 'evil'"));
  EXPECT_FALSE(fs::exists(cache_ + "/active"));
  // A listed partner is served by the same server.
  ProcessResult ok = Models(PartnerConfig(vendor->port(), "globex"), {"list", "--remote"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("1.0.0"));
}

// Calls ListModels on the vendor with the given channel credentials; returns the status.
grpc::Status CallListModels(int port, std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), credentials);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  fedface::v1::ListModelsResponse response;
  return fedface::v1::ModelRegistry::NewStub(channel)->ListModels(
      &context, fedface::v1::ListModelsRequest(), &response);
}

TEST_F(DistributionTest, RefusesClientWithoutCertificate) {
  auto vendor = StartVendor();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadText(pki_ + "/ca.crt");  // trusts the server, presents nothing
  grpc::Status s = CallListModels(vendor->port(), grpc::SslCredentials(options));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // The same call with acme's certificate succeeds: the refusal is about the certificate.
  options.pem_cert_chain = ReadText(pki_ + "/partners/acme/client.crt");
  options.pem_private_key = ReadText(pki_ + "/partners/acme/client.key");
  EXPECT_TRUE(CallListModels(vendor->port(), grpc::SslCredentials(options)).ok());
}

TEST_F(DistributionTest, RefusesClientCertificateFromAnotherCa) {
  auto vendor = StartVendor();
  const std::string other_pki = dir_ + "/other-pki";
  ASSERT_TRUE(MakeCertificates(other_pki, {"acme"}));
  // Trusts the real vendor CA, but presents an "acme" certificate the vendor's CA never signed.
  fs::copy_file(pki_ + "/ca.crt", other_pki + "/trusted-ca.crt");
  std::string config = PartnerConfig(vendor->port(), "acme", "", other_pki);
  std::string text = ReadText(config);
  text.replace(text.find(other_pki + "/ca.crt"), (other_pki + "/ca.crt").size(),
               other_pki + "/trusted-ca.crt");
  WriteText(config, text);
  ProcessResult r = Models(config, {"pull"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("ListModels failed"));
  EXPECT_FALSE(fs::exists(cache_ + "/active"));
  EXPECT_THAT(vendor->log(), Not(HasSubstr("partner=acme")));
}

TEST_F(DistributionTest, RefusesPlaintextToTlsPort) {
  auto vendor = StartVendor();
  grpc::Status s = CallListModels(vendor->port(), grpc::InsecureChannelCredentials());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_THAT(vendor->log(), Not(HasSubstr("ListModels partner=")));
}

TEST_F(DistributionTest, PartnerRefusesServerWithUnexpectedName) {
  auto vendor = StartVendor();
  // The registry's certificate names localhost/127.0.0.1/::1, not registry.example.
  std::string config = PartnerConfig(vendor->port());
  std::string text = ReadText(config);
  text.insert(text.find("  ca_cert:"), "  server_name: registry.example\n");
  WriteText(config, text);
  ProcessResult wrong = Models(config, {"list", "--remote"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("ListModels failed"));
  EXPECT_THAT(vendor->log(), Not(HasSubstr("ListModels partner=acme")));
}

// Replaces every occurrence of `from` in the file at `path` by `to`.
void ReplaceInFile(const std::string& path, const std::string& from, const std::string& to) {
  std::string text = ReadText(path);
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  WriteText(path, text);
}

TEST_F(DistributionTest, RegistryRefusesAPartnerPresentingAServerCertificate) {
  auto vendor = StartVendor();
  // CN=acme, the allowed partner's name, but issued for serving (serverAuth), as a partner's
  // listener certificate is: it must not open the registry.
  ASSERT_TRUE(IssueCertificate(pki_, dir_ + "/acme-server", "acme", "serverAuth", "IP:127.0.0.1"));
  const std::string config = PartnerConfig(vendor->port());
  ReplaceInFile(config, pki_ + "/partners/acme/client.", dir_ + "/acme-server.");
  ProcessResult r = Models(config, {"list", "--remote"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr("ListModels failed"));
  EXPECT_THAT(vendor->log(), Not(HasSubstr("ListModels partner=acme")));
  // Its own client certificate opens it.
  ProcessResult ok = Models(PartnerConfig(vendor->port()), {"list", "--remote"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

TEST_F(DistributionTest, PartnerRefusesARegistryPresentingAClientCertificate) {
  // A clientAuth-only certificate that carries the registry's names (localhost, 127.0.0.1), as
  // the coordinator's or a partner's client key would be if it were issued with names.
  ASSERT_TRUE(IssueCertificate(pki_, dir_ + "/registry-client", "fedface-registry", "clientAuth",
                               "DNS:localhost,IP:127.0.0.1"));
  const std::string config = absl::StrCat(dir_, "/vendor-client-cert.yaml");
  WriteText(config, VendorConfigYaml(pki_, registry_, "127.0.0.1:0", ""));
  ReplaceInFile(config, pki_ + "/registry.", dir_ + "/registry-client.");
  VendorServer vendor(config, dir_, "client-cert");
  ASSERT_TRUE(vendor.WaitReady()) << vendor.log();
  ProcessResult r = Models(PartnerConfig(vendor.port()), {"list", "--remote"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_THAT(r.err, HasSubstr("ListModels failed"));
  EXPECT_THAT(r.out, Not(HasSubstr("1.0.0")));
}

TEST_F(DistributionTest, ConfigurationMistakesAreStartupErrors) {
  const std::string config = dir_ + "/bad-vendor.yaml";
  WriteText(config, VendorConfigYaml(pki_, registry_, "127.0.0.1:0", "  chunk_size: 4096\n"));
  ProcessResult vendor = RunProcess({ModelVendorBinary(), "serve", "--config", config}, dir_);
  EXPECT_EQ(vendor.exit_code, 1);
  EXPECT_THAT(vendor.err, HasSubstr("bad-vendor.yaml:"));
  EXPECT_THAT(vendor.err, HasSubstr("unknown key 'registry.chunk_size' (did you mean "
                                    "'registry.chunk_bytes'?)"));

  ProcessResult missing =
      RunProcess({ModelVendorBinary(), "serve", "--config", dir_ + "/no-such.yaml"}, dir_);
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("no-such.yaml: no such file"));

  const std::string partner = PartnerConfig(1);
  std::string text = ReadText(partner);
  text.replace(text.find("acme/client.key"), 15, "gone/client.key");
  WriteText(partner, text);
  ProcessResult p = Models(partner, {"list"});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_THAT(p.err,
              HasSubstr("vendor.client_key: " + pki_ + "/partners/gone/client.key: no such file"));
}

}  // namespace
}  // namespace fedface::testing
