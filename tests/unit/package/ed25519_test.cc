#include "core/package/ed25519.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "core/common/sha256.h"
#include "tests/support/test_env.h"
#include "tests/unit/package/package_test_helpers.h"

namespace fedface {
namespace {

using ::fedface::testing::FlipByte;
using ::fedface::testing::MakeTempDir;
using ::fedface::testing::Slurp;
using ::fedface::testing::Spit;
using ::testing::HasSubstr;

// PEM text of another kind of key, made with OpenSSL directly.
std::string OtherKeyPem(const char* type, bool private_key, const char* password = nullptr) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, type);
  EXPECT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  if (private_key) {
    PEM_write_bio_PKCS8PrivateKey(bio, key, password ? EVP_aes_256_cbc() : nullptr, nullptr, 0,
                                  nullptr, const_cast<char*>(password));
  } else {
    PEM_write_bio_PUBKEY(bio, key);
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

// Runs a shell command and returns its exit status.
int Shell(const std::string& command) { return std::system(command.c_str()); }

TEST(Ed25519Test, KeyPairRoundTripsThroughPemFiles) {
  const std::string dir = MakeTempDir("ed25519");
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_TRUE(WriteKeyPair(*key, dir + "/vendor", false).ok());

  struct stat st {};
  ASSERT_EQ(::stat((dir + "/vendor").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(Slurp(dir + "/vendor"), HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_THAT(Slurp(dir + "/vendor.pub"), HasSubstr("-----BEGIN PUBLIC KEY-----"));

  auto loaded = Ed25519PrivateKey::LoadPem(dir + "/vendor");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto pub = Ed25519PublicKey::LoadPem(dir + "/vendor.pub");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(loaded->public_key(), key->public_key());
  EXPECT_EQ(*pub, key->public_key());
  EXPECT_EQ(loaded->key_id(), key->key_id());

  // The reloaded private key signs what the original public key accepts.
  auto sig = loaded->Sign("manifest bytes");
  ASSERT_TRUE(sig.ok());
  EXPECT_TRUE(key->public_key().Verify("manifest bytes", *sig).ok());
}

TEST(Ed25519Test, KeyIdIsFirst16HexOfSha256OfRawPublicKey) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  // Independent route to the raw key: the last 32 bytes of the SPKI DER inside the PEM.
  std::string pem = key->public_key().ToPem();
  std::string b64;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (!line.empty() && line[0] != '-') b64.append(line.data(), line.size());
  }
  std::string der;
  ASSERT_TRUE(absl::Base64Unescape(b64, &der));
  ASSERT_EQ(der.size(), 44u);  // 12-byte Ed25519 SPKI prefix + 32-byte key
  const std::string raw = der.substr(12);
  EXPECT_EQ(key->key_id(), Sha256Hex(raw).substr(0, 16));
  EXPECT_EQ(key->key_id().size(), 16u);
}

TEST(Ed25519Test, SignatureVerifiesOnlyForTheSignedBytesAndKey) {
  auto key = Ed25519PrivateKey::Generate();
  auto other = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok() && other.ok());
  auto sig = key->Sign("the exact manifest bytes");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->size(), kEd25519SignatureBytes);
  EXPECT_TRUE(key->public_key().Verify("the exact manifest bytes", *sig).ok());

  absl::Status altered = key->public_key().Verify("the exact manifest bytez", *sig);
  EXPECT_EQ(altered.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(altered.message(), HasSubstr("does not verify"));

  std::string bad_sig = *sig;
  bad_sig[10] ^= 0x40;
  EXPECT_FALSE(key->public_key().Verify("the exact manifest bytes", bad_sig).ok());
  EXPECT_FALSE(other->public_key().Verify("the exact manifest bytes", *sig).ok());

  absl::Status short_sig = key->public_key().Verify("x", sig->substr(0, 63));
  EXPECT_THAT(short_sig.message(), HasSubstr("63 bytes, expected 64"));
}

TEST(Ed25519Test, InteroperatesWithTheOpensslCommandLine) {
  if (Shell("command -v openssl >/dev/null 2>&1") != 0) FEDFACE_SKIP_OR_FAIL("no openssl CLI");
  const std::string dir = MakeTempDir("ed25519-cli");
  // A key made by the openssl tool loads, and its signature verifies with openssl.
  ASSERT_EQ(Shell("openssl genpkey -algorithm ed25519 -out " + dir + "/k 2>/dev/null"), 0);
  auto key = Ed25519PrivateKey::LoadPem(dir + "/k");
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_EQ(Shell("openssl pkey -in " + dir + "/k -pubout -out " + dir + "/k.pub"), 0);
  auto pub = Ed25519PublicKey::LoadPem(dir + "/k.pub");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(*pub, key->public_key());

  Spit(dir + "/msg", "signed by fedface, checked by openssl");
  auto sig = key->Sign("signed by fedface, checked by openssl");
  ASSERT_TRUE(sig.ok());
  Spit(dir + "/msg.sig", *sig);
  EXPECT_EQ(Shell("openssl pkeyutl -verify -pubin -inkey " + dir + "/k.pub -rawin -in " + dir +
                  "/msg -sigfile " + dir + "/msg.sig >/dev/null"),
            0);
  FlipByte(dir + "/msg", 0);
  EXPECT_NE(Shell("openssl pkeyutl -verify -pubin -inkey " + dir + "/k.pub -rawin -in " + dir +
                  "/msg -sigfile " + dir + "/msg.sig >/dev/null 2>&1"),
            0);
}

TEST(Ed25519Test, LoadingAMissingKeyFileNamesTheFile) {
  auto pub = Ed25519PublicKey::LoadPem("/nonexistent/vendor.pub");
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pub.status().message(), HasSubstr("/nonexistent/vendor.pub: key file not found"));
  auto priv = Ed25519PrivateKey::LoadPem("/nonexistent/vendor");
  EXPECT_THAT(priv.status().message(), HasSubstr("/nonexistent/vendor: key file not found"));
}

TEST(Ed25519Test, RefusesFilesThatAreNotPem) {
  auto pub = Ed25519PublicKey::FromPem("just some text\n", "vendor.pub");
  EXPECT_EQ(pub.status().message(), "vendor.pub: not a PEM file");
  auto priv = Ed25519PrivateKey::FromPem(std::string(32, '\x01'), "vendor");
  EXPECT_EQ(priv.status().message(), "vendor: not a PEM file");
  auto garbled = Ed25519PublicKey::FromPem(
      "-----BEGIN PUBLIC KEY-----\nnot base64 !!!\n-----END PUBLIC KEY-----\n", "vendor.pub");
  EXPECT_THAT(garbled.status().message(), HasSubstr("vendor.pub: malformed PEM public key"));
}

TEST(Ed25519Test, RefusesKeysOfAnotherType) {
  auto pub = Ed25519PublicKey::FromPem(OtherKeyPem("X25519", false), "x.pub");
  EXPECT_EQ(pub.status().message(), "x.pub: an X25519 key; expected an Ed25519 key");
  auto priv = Ed25519PrivateKey::FromPem(OtherKeyPem("X25519", true), "x");
  EXPECT_EQ(priv.status().message(), "x: an X25519 key; expected an Ed25519 key");
  auto ec = Ed25519PublicKey::FromPem(OtherKeyPem("ED448", false), "ed448.pub");
  EXPECT_THAT(ec.status().message(), HasSubstr("ED448 key; expected an Ed25519 key"));
}

TEST(Ed25519Test, RefusesPublicAndPrivateKeyMixUps) {
  auto key = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(key.ok());
  auto as_private = Ed25519PrivateKey::FromPem(key->public_key().ToPem(), "vendor.pub");
  EXPECT_THAT(as_private.status().message(), HasSubstr("holds a public key"));
  auto as_public = Ed25519PublicKey::FromPem(key->ToPem(), "vendor");
  EXPECT_THAT(as_public.status().message(), HasSubstr("holds a private key"));
}

TEST(Ed25519Test, RefusesEncryptedPrivateKeyWithoutPrompting) {
  auto priv = Ed25519PrivateKey::FromPem(OtherKeyPem("ED25519", true, "secret"), "enc");
  EXPECT_THAT(priv.status().message(), HasSubstr("enc: an encrypted private key"));
}

TEST(Ed25519Test, WriteKeyPairRefusesToOverwriteUnlessAsked) {
  const std::string dir = MakeTempDir("ed25519-overwrite");
  auto first = Ed25519PrivateKey::Generate();
  auto second = Ed25519PrivateKey::Generate();
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(WriteKeyPair(*first, dir + "/k", false).ok());
  absl::Status again = WriteKeyPair(*second, dir + "/k", false);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("already exists"));
  EXPECT_EQ(Ed25519PrivateKey::LoadPem(dir + "/k")->key_id(), first->key_id());

  // Only the .pub existing still blocks: a pair is never split.
  std::filesystem::remove(dir + "/k");
  EXPECT_FALSE(WriteKeyPair(*second, dir + "/k", false).ok());
  EXPECT_FALSE(std::filesystem::exists(dir + "/k"));

  ASSERT_TRUE(WriteKeyPair(*second, dir + "/k", true).ok());
  EXPECT_EQ(Ed25519PrivateKey::LoadPem(dir + "/k")->key_id(), second->key_id());
  EXPECT_EQ(Ed25519PublicKey::LoadPem(dir + "/k.pub")->key_id(), second->key_id());
  struct stat st {};
  ASSERT_EQ(::stat((dir + "/k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // No temporary files left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2);
}

}  // namespace
}  // namespace fedface
