// The certificate role and identity checks (core/config/peer_identity.h) on certificates made by
// scripts/make_certs.sh, and the script's layout: one extended key usage per certificate, no
// loopback names unless --dev, re-runs that keep what exists.
#include "core/config/peer_identity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "tests/support/child_process.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

testing::ProcessResult MakeCerts(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/bash",
                                   testing::Env("FEDFACE_SOURCE_DIR") + "/scripts/make_certs.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::RunProcess(argv, fs::temp_directory_path().string());
}

PeerCertificate Load(const std::string& path) {
  absl::StatusOr<PeerCertificate> cert = ParsePeerCertificate(testing::ReadText(path));
  EXPECT_TRUE(cert.ok()) << path << ": " << cert.status();
  return cert.ok() ? *cert : PeerCertificate{};
}

// A production set: the registry at registry.example.com, acme's listener at acme.example.com
// and 10.0.0.5, globex without a listener.
class MakeCertsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("make-certs");
    ASSERT_FALSE(dir_.empty());
    pki_ = dir_ + "/pki";
    const testing::ProcessResult r = MakeCerts(
        {pki_, "--server-name", "registry.example.com", "--partner-address",
         "acme=acme.example.com", "--partner-address", "acme=10.0.0.5", "acme", "globex"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  std::string dir_, pki_;
};

TEST_F(MakeCertsTest, IssuesOneCertificatePerRoleWithOneUsageEach) {
  const PeerCertificate registry = Load(pki_ + "/registry.crt");
  EXPECT_TRUE(registry.server_auth);
  EXPECT_FALSE(registry.client_auth);
  EXPECT_EQ(registry.common_name, "fedface-registry");
  EXPECT_THAT(registry.alt_names, ElementsAre("registry.example.com"));

  const PeerCertificate coordinator = Load(pki_ + "/coordinator.crt");
  EXPECT_TRUE(coordinator.client_auth);
  EXPECT_FALSE(coordinator.server_auth);
  EXPECT_EQ(coordinator.common_name, "fedface-vendor");
  EXPECT_THAT(coordinator.alt_names, IsEmpty());

  const PeerCertificate acme_client = Load(pki_ + "/partners/acme/client.crt");
  EXPECT_TRUE(acme_client.client_auth);
  EXPECT_FALSE(acme_client.server_auth);
  EXPECT_EQ(acme_client.common_name, "acme");
  EXPECT_THAT(acme_client.alt_names, IsEmpty());

  const PeerCertificate acme_server = Load(pki_ + "/partners/acme/server.crt");
  EXPECT_TRUE(acme_server.server_auth);
  EXPECT_FALSE(acme_server.client_auth);
  EXPECT_EQ(acme_server.common_name, "acme");
  EXPECT_THAT(acme_server.alt_names, ElementsAre("acme.example.com", "10.0.0.5"));

  EXPECT_TRUE(fs::exists(pki_ + "/partners/globex/client.crt"));
  EXPECT_FALSE(fs::exists(pki_ + "/partners/globex/server.crt")) << "globex has no address";
}

TEST_F(MakeCertsTest, AProductionSetNamesNoLoopbackAddress) {
  for (const auto& entry : fs::recursive_directory_iterator(pki_)) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".crt") continue;
    const testing::ProcessResult text =
        testing::RunProcess({"/usr/bin/openssl", "x509", "-in", path, "-noout", "-text"});
    ASSERT_EQ(text.exit_code, 0) << path << ": " << text.err;
    for (const char* loopback : {"localhost", "127.0.0.1", "0:0:0:0:0:0:0:1"}) {
      EXPECT_EQ(text.out.find(loopback), std::string::npos) << path << " names " << loopback;
    }
  }
}

TEST_F(MakeCertsTest, KeysAreOwnerOnly) {
  for (const auto& entry : fs::recursive_directory_iterator(pki_)) {
    if (entry.path().extension() != ".key") continue;
    struct stat st {};
    ASSERT_EQ(::stat(entry.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << entry.path();
  }
}

TEST_F(MakeCertsTest, ReRunKeepsWhatExistsAndAddsWhatIsMissing) {
  const std::string acme_before = testing::ReadText(pki_ + "/partners/acme/server.crt");
  const std::string registry_before = testing::ReadText(pki_ + "/registry.crt");
  const testing::ProcessResult r = MakeCerts(
      {pki_, "--partner-address", "globex=globex.example.com", "acme", "globex", "initech"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(testing::ReadText(pki_ + "/partners/acme/server.crt"), acme_before);
  EXPECT_EQ(testing::ReadText(pki_ + "/registry.crt"), registry_before);
  EXPECT_THAT(Load(pki_ + "/partners/globex/server.crt").alt_names,
              ElementsAre("globex.example.com"));
  EXPECT_TRUE(Load(pki_ + "/partners/initech/client.crt").client_auth);
}

TEST_F(MakeCertsTest, RefusesAPartnerNamedLikeTheVendorAndAnUnlistedAddress) {
  const testing::ProcessResult vendor = MakeCerts({pki_, "fedface-vendor"});
  EXPECT_EQ(vendor.exit_code, 2);
  EXPECT_THAT(vendor.err, HasSubstr("partner name 'fedface-vendor' is the vendor's own name"));
  const testing::ProcessResult unlisted = MakeCerts({pki_, "--partner-address", "zed=1.2.3.4"});
  EXPECT_EQ(unlisted.exit_code, 2);
  EXPECT_THAT(unlisted.err, HasSubstr("'zed', which is not among the partners listed"));
}

TEST(MakeCertsDevTest, ADevelopmentSetNamesLoopbackOnServerCertificatesOnly) {
  const std::string pki = testing::MakeTempDir("make-certs-dev") + "/pki";
  const testing::ProcessResult nameless = MakeCerts({pki, "acme"});
  EXPECT_EQ(nameless.exit_code, 2);
  EXPECT_THAT(nameless.err, HasSubstr("give --server-name HOST (or --dev"));
  EXPECT_FALSE(fs::exists(pki + "/ca.crt")) << "nothing is made before the arguments check out";

  const testing::ProcessResult r = MakeCerts({pki, "--dev", "acme"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* server : {"/registry.crt", "/partners/acme/server.crt"}) {
    EXPECT_THAT(Load(pki + server).alt_names, ElementsAre("localhost", "127.0.0.1", "::1"))
        << server;
  }
  EXPECT_THAT(Load(pki + "/partners/acme/client.crt").alt_names, IsEmpty());
  EXPECT_THAT(Load(pki + "/coordinator.crt").alt_names, IsEmpty());
}

TEST_F(MakeCertsTest, RoleCheckRefusesACertificateUsedAgainstItsUsage) {
  const PeerCertificate client = Load(pki_ + "/partners/acme/client.crt");
  const PeerCertificate server = Load(pki_ + "/partners/acme/server.crt");
  EXPECT_TRUE(CheckPeerRole(client, TlsRole::kClient).ok());
  EXPECT_TRUE(CheckPeerRole(server, TlsRole::kServer).ok());
  const absl::Status as_server = CheckPeerRole(client, TlsRole::kServer);
  EXPECT_EQ(as_server.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(as_server.message(),
            "certificate 'acme' is not a server certificate (its extendedKeyUsage lacks "
            "serverAuth)");
  EXPECT_EQ(CheckPeerRole(server, TlsRole::kClient).message(),
            "certificate 'acme' is not a client certificate (its extendedKeyUsage lacks "
            "clientAuth)");
}

TEST_F(MakeCertsTest, PartnerServerCheckNamesBothPartners) {
  const PeerCertificate acme = Load(pki_ + "/partners/acme/server.crt");
  EXPECT_TRUE(CheckPartnerServer(acme, "acme", "10.0.0.5:7543").ok());
  const absl::Status other = CheckPartnerServer(acme, "globex", "10.0.0.7:7543");
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(other.message(),
            "partner 'globex' at 10.0.0.7:7543 presented the certificate of 'acme' (CN=acme), "
            "not its own (CN=globex)");
  // acme's client certificate at acme's address: the name fits, the role does not.
  const absl::Status client =
      CheckPartnerServer(Load(pki_ + "/partners/acme/client.crt"), "acme", "10.0.0.5:7543");
  EXPECT_THAT(std::string(client.message()),
              HasSubstr("partner 'acme' at 10.0.0.5:7543: certificate 'acme' is not a server"));
}

TEST(PeerIdentityTest, ACertificateWithoutExtendedKeyUsageHasNoRole) {
  // "Any purpose" (no extendedKeyUsage) is exactly what the role check exists to exclude.
  const std::string dir = testing::MakeTempDir("no-eku");
  const testing::ProcessResult r = testing::RunProcess(
      {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", dir + "/k.pem", "-out", dir + "/c.pem", "-days", "1", "-subj",
       "/CN=anything", "-addext", "subjectAltName=DNS:anything"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const PeerCertificate cert = Load(dir + "/c.pem");
  EXPECT_EQ(cert.common_name, "anything");
  EXPECT_FALSE(CheckPeerRole(cert, TlsRole::kClient).ok());
  EXPECT_FALSE(CheckPeerRole(cert, TlsRole::kServer).ok());
}

TEST(PeerIdentityTest, RefusesTextThatIsNotACertificate) {
  EXPECT_EQ(ParsePeerCertificate("not a certificate").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedface
