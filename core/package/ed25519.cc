#include "core/package/ed25519.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "core/package/durable_write.h"

namespace fedface {
namespace {

constexpr uint64_t kMaxPemBytes = 64 * 1024;

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

struct BioDeleter {
  void operator()(BIO* p) const { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// The first queued OpenSSL error as text (and clears the queue so it does not leak into the
// next, unrelated call).
std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

// Never prompt for a passphrase: an encrypted key is an error, not an interactive wait.
int NoPassphrase(char*, int, int, void*) { return -1; }

BioPtr MemoryBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

// What kind of PEM block the text holds, for a helpful error before OpenSSL's generic one.
std::string PemLabel(std::string_view pem) {
  const size_t begin = pem.find("-----BEGIN ");
  if (begin == std::string_view::npos) return "";
  const size_t start = begin + 11;
  const size_t end = pem.find("-----", start);
  if (end == std::string_view::npos) return "";
  return std::string(pem.substr(start, end - start));
}

absl::Status WrongKeyType(absl::string_view source, EVP_PKEY* key) {
  const char* name = EVP_PKEY_get0_type_name(key);
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": an ", name ? name : "unknown", " key; expected an Ed25519 key"));
}

absl::StatusOr<std::array<uint8_t, kEd25519PublicKeyBytes>> RawPublic(EVP_PKEY* key) {
  std::array<uint8_t, kEd25519PublicKeyBytes> raw{};
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &len) != 1 || len != raw.size()) {
    return absl::InternalError(absl::StrCat("cannot read the raw public key: ", OpenSslError()));
  }
  return raw;
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  auto text = ReadFile(path, kMaxPemBytes);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat(path, ": key file not found"));
    }
    return text.status();
  }
  return text;
}

}  // namespace

std::string Ed25519KeyId(const std::array<uint8_t, kEd25519PublicKeyBytes>& raw) {
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()))
      .substr(0, 16);
}

// ---------------------------------------------------------------------------------------------
// Ed25519PublicKey

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromRaw(std::string_view raw) {
  if (raw.size() != kEd25519PublicKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("Ed25519 public key is ", raw.size(),
                                                   " bytes, expected ", kEd25519PublicKeyBytes));
  }
  Ed25519PublicKey key;
  std::memcpy(key.raw_.data(), raw.data(), raw.size());
  return key;
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::FromPem(std::string_view pem,
                                                           std::string_view source_view) {
  const std::string source(source_view);  // Debian's absl::StrCat does not take std::string_view
  const std::string label = PemLabel(pem);
  if (label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a PEM file"));
  }
  if (absl::StrContains(label, "PRIVATE KEY")) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": holds a private key; pin the public key (KEY.pub) instead"));
  }
  if (label != "PUBLIC KEY") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": a PEM '", label, "' block; expected 'PUBLIC KEY'"));
  }
  BioPtr bio = MemoryBio(pem);
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed PEM public key: ", OpenSslError()));
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) return WrongKeyType(source, key.get());
  ASSIGN_OR_RETURN(auto raw, RawPublic(key.get()));
  Ed25519PublicKey out;
  out.raw_ = raw;
  return out;
}

absl::StatusOr<Ed25519PublicKey> Ed25519PublicKey::LoadPem(const std::string& path) {
  ASSIGN_OR_RETURN(auto text, ReadPemFile(path));
  return FromPem(text, path);
}

absl::Status Ed25519PublicKey::Verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kEd25519SignatureBytes) {
    return absl::PermissionDeniedError(absl::StrCat("signature is ", signature.size(),
                                                    " bytes, expected ", kEd25519SignatureBytes));
  }
  PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  if (!key) return absl::InternalError(absl::StrCat("bad public key: ", OpenSslError()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return absl::InternalError(absl::StrCat("cannot start verification: ", OpenSslError()));
  }
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const uint8_t*>(signature.data()),
                                  signature.size(),
                                  reinterpret_cast<const uint8_t*>(message.data()), message.size());
  ERR_clear_error();
  if (rc != 1) {
    return absl::PermissionDeniedError(
        absl::StrCat("signature does not verify against key ", key_id()));
  }
  return absl::OkStatus();
}

std::string Ed25519PublicKey::ToPem() const {
  PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw_.data(), raw_.size()));
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!key || !bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    ERR_clear_error();
    return "";
  }
  return BioToString(bio.get());
}

absl::Status Ed25519PublicKey::WritePem(const std::string& path, bool overwrite) const {
  const std::string pem = ToPem();
  if (pem.empty()) return absl::InternalError(absl::StrCat(path, ": cannot encode public key"));
  return package_internal::WriteFileDurably(path, pem, 0644, overwrite);
}

std::string Ed25519PublicKey::key_id() const { return Ed25519KeyId(raw_); }

// ---------------------------------------------------------------------------------------------
// Ed25519PrivateKey

struct Ed25519PrivateKey::Impl {
  PkeyPtr key;
};

Ed25519PrivateKey::Ed25519PrivateKey(std::unique_ptr<Impl> impl, Ed25519PublicKey pub)
    : impl_(std::move(impl)), public_key_(pub) {}
Ed25519PrivateKey::Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey& Ed25519PrivateKey::operator=(Ed25519PrivateKey&&) noexcept = default;
Ed25519PrivateKey::~Ed25519PrivateKey() = default;

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::Generate() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) {
    return absl::InternalError(absl::StrCat("Ed25519 key generation failed: ", OpenSslError()));
  }
  ASSIGN_OR_RETURN(auto raw, RawPublic(key.get()));
  ASSIGN_OR_RETURN(auto pub, Ed25519PublicKey::FromRaw(std::string_view(
                                 reinterpret_cast<const char*>(raw.data()), raw.size())));
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return Ed25519PrivateKey(std::move(impl), pub);
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::FromPem(std::string_view pem,
                                                             std::string_view source_view) {
  const std::string source(source_view);  // Debian's absl::StrCat does not take std::string_view
  const std::string label = PemLabel(pem);
  if (label.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a PEM file"));
  }
  if (label == "PUBLIC KEY") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": holds a public key; signing needs the private key"));
  }
  if (label == "ENCRYPTED PRIVATE KEY") {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": an encrypted private key; only unencrypted PKCS#8 is supported"));
  }
  if (!absl::StrContains(label, "PRIVATE KEY")) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": a PEM '", label, "' block; expected 'PRIVATE KEY'"));
  }
  BioPtr bio = MemoryBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed PEM private key: ", OpenSslError()));
  }
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) return WrongKeyType(source, key.get());
  ASSIGN_OR_RETURN(auto raw, RawPublic(key.get()));
  ASSIGN_OR_RETURN(auto pub, Ed25519PublicKey::FromRaw(std::string_view(
                                 reinterpret_cast<const char*>(raw.data()), raw.size())));
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(key);
  return Ed25519PrivateKey(std::move(impl), pub);
}

absl::StatusOr<Ed25519PrivateKey> Ed25519PrivateKey::LoadPem(const std::string& path) {
  ASSIGN_OR_RETURN(auto text, ReadPemFile(path));
  return FromPem(text, path);
}

absl::StatusOr<std::string> Ed25519PrivateKey::Sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->key.get()) != 1) {
    return absl::InternalError(absl::StrCat("cannot start signing: ", OpenSslError()));
  }
  std::string sig(kEd25519SignatureBytes, '\0');
  size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<uint8_t*>(sig.data()), &len,
                     reinterpret_cast<const uint8_t*>(message.data()), message.size()) != 1 ||
      len != kEd25519SignatureBytes) {
    return absl::InternalError(absl::StrCat("Ed25519 signing failed: ", OpenSslError()));
  }
  return sig;
}

std::string Ed25519PrivateKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  // PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in OpenSSL 3.
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), impl_->key.get(), nullptr, nullptr, 0, nullptr,
                                       nullptr) != 1) {
    ERR_clear_error();
    return "";
  }
  return BioToString(bio.get());
}

absl::Status Ed25519PrivateKey::WritePem(const std::string& path, bool overwrite) const {
  const std::string pem = ToPem();
  if (pem.empty()) return absl::InternalError(absl::StrCat(path, ": cannot encode private key"));
  return package_internal::WriteFileDurably(path, pem, 0600, overwrite);
}

absl::Status WriteKeyPair(const Ed25519PrivateKey& key, const std::string& private_path,
                          bool overwrite) {
  const std::string public_path = private_path + ".pub";
  if (!overwrite) {
    for (const std::string& p : {private_path, public_path}) {
      std::error_code ec;
      if (std::filesystem::exists(std::filesystem::symlink_status(p, ec))) {
        return absl::AlreadyExistsError(
            absl::StrCat(p, ": already exists; not overwriting (use --force)"));
      }
    }
  }
  // Public first: a private key on disk always has its public half next to it.
  absl::Status st = key.public_key().WritePem(public_path, overwrite);
  if (!st.ok()) return st;
  st = key.WritePem(private_path, overwrite);
  if (!st.ok()) {
    if (!overwrite) ::unlink(public_path.c_str());
    return st;
  }
  return absl::OkStatus();
}

}  // namespace fedface
