#include "core/config/tls_credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::testing::HasSubstr;

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("tls");
    ASSERT_FALSE(dir_.empty());
    const std::string script = testing::Env("FEDFACE_SOURCE_DIR") + "/scripts/make_certs.sh";
    const std::string cmd = "bash '" + script + "' '" + dir_ + "' --dev acme > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string dir_;
};

TEST_F(TlsCredentialsTest, LoadsTheMaterialOfTheScriptsPki) {
  absl::StatusOr<TlsMaterial> m = LoadTlsMaterial(
      {dir_ + "/ca.crt", dir_ + "/partners/acme/client.crt", dir_ + "/partners/acme/client.key"});
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->subject_cn, "acme");
  EXPECT_THAT(m->ca_pem, HasSubstr("BEGIN CERTIFICATE"));
}

TEST_F(TlsCredentialsTest, RefusesAKeyThatDoesNotMatchTheCertificate) {
  absl::StatusOr<TlsMaterial> m = LoadTlsMaterial(
      {dir_ + "/ca.crt", dir_ + "/partners/acme/client.crt", dir_ + "/registry.key"});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), dir_ + "/registry.key: does not match the certificate in " +
                                      dir_ + "/partners/acme/client.crt");
}

TEST_F(TlsCredentialsTest, RefusesFilesThatAreNotPem) {
  std::ofstream(dir_ + "/junk.pem") << "not a certificate\n";
  absl::StatusOr<TlsMaterial> ca =
      LoadTlsMaterial({dir_ + "/junk.pem", dir_ + "/registry.crt", dir_ + "/registry.key"});
  ASSERT_FALSE(ca.ok());
  EXPECT_EQ(ca.status().message(), dir_ + "/junk.pem: no PEM certificate in the file");
  absl::StatusOr<TlsMaterial> key =
      LoadTlsMaterial({dir_ + "/ca.crt", dir_ + "/registry.crt", dir_ + "/junk.pem"});
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message(), dir_ + "/junk.pem: not an unencrypted PEM private key");
  // A certificate given where the key belongs is also refused.
  absl::StatusOr<TlsMaterial> swapped =
      LoadTlsMaterial({dir_ + "/ca.crt", dir_ + "/registry.crt", dir_ + "/registry.crt"});
  EXPECT_FALSE(swapped.ok());
}

TEST_F(TlsCredentialsTest, NamesAMissingFile) {
  absl::StatusOr<TlsMaterial> m =
      LoadTlsMaterial({dir_ + "/ca.crt", dir_ + "/nope.crt", dir_ + "/registry.key"});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), dir_ + "/nope.crt: no such file");
}

}  // namespace
}  // namespace fedface
