// `model_vendor keygen` as a user runs it: the real binary, real files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/package/ed25519.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

using ::fedface::testing::Env;
using ::fedface::testing::MakeTempDir;
using ::testing::HasSubstr;

struct CliRun {
  int exit_code;
  std::string output;  // stdout + stderr
};

CliRun Vendor(const std::string& args) {
  const std::string cmd = Env("FEDFACE_MODEL_VENDOR") + " " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  CliRun r{-1, ""};
  if (!pipe) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class KeygenCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string bin = Env("FEDFACE_MODEL_VENDOR");
    if (bin.empty() || !std::filesystem::exists(bin)) {
      FEDFACE_SKIP_OR_FAIL(
          "model_vendor binary is absent (build target model_vendor); skipping test");
    }
    dir_ = MakeTempDir("keygen");
  }
  std::string dir_;
};

TEST_F(KeygenCliTest, WritesKeyPairAndPrintsTheKeyId) {
  CliRun r = Vendor("keygen --out " + dir_ + "/vendor");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto key = Ed25519PrivateKey::LoadPem(dir_ + "/vendor");
  ASSERT_TRUE(key.ok()) << key.status();
  auto pub = Ed25519PublicKey::LoadPem(dir_ + "/vendor.pub");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(*pub, key->public_key());
  EXPECT_THAT(r.output, HasSubstr("key id:      " + key->key_id()));
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/vendor").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(KeygenCliTest, RefusesToOverwriteWithoutForce) {
  ASSERT_EQ(Vendor("keygen --out " + dir_ + "/vendor").exit_code, 0);
  const std::string first = Ed25519PublicKey::LoadPem(dir_ + "/vendor.pub")->key_id();
  CliRun again = Vendor("keygen --out " + dir_ + "/vendor");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.output, HasSubstr(dir_ + "/vendor: already exists; not overwriting"));
  EXPECT_EQ(Ed25519PublicKey::LoadPem(dir_ + "/vendor.pub")->key_id(), first);

  CliRun forced = Vendor("keygen --force --out " + dir_ + "/vendor");
  EXPECT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_NE(Ed25519PublicKey::LoadPem(dir_ + "/vendor.pub")->key_id(), first);
  EXPECT_EQ(Ed25519PrivateKey::LoadPem(dir_ + "/vendor")->key_id(),
            Ed25519PublicKey::LoadPem(dir_ + "/vendor.pub")->key_id());
}

TEST_F(KeygenCliTest, UsageErrorsExitWithTwoAndHelpWithZero) {
  EXPECT_EQ(Vendor("keygen").exit_code, 2);
  EXPECT_EQ(Vendor("keygen --out").exit_code, 2);
  CliRun unknown = Vendor("keygen --out " + dir_ + "/k --bits 4096");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/k"));
  CliRun help = Vendor("keygen --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("usage: model_vendor keygen --out KEY"));
}

TEST_F(KeygenCliTest, ReportsAnUnwritableDestination) {
  CliRun r = Vendor("keygen --out " + dir_ + "/no/such/dir/vendor");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr(dir_ + "/no/such/dir/vendor"));
}

}  // namespace
}  // namespace fedface
