// The vendor's Ed25519 signing keys (OpenSSL EVP; no hand-written crypto). The private key signs
// a package's manifest.json; partners pin the public key and verify with it.
//
// Files: KEY is a PEM "PRIVATE KEY" (PKCS#8) written with mode 0600; KEY.pub is a PEM
// "PUBLIC KEY" (SubjectPublicKeyInfo). A key id is the first 16 lower-case hex characters of
// sha256 of the raw 32-byte public key; it names a key in messages and in the manifest.
//
// Thread safety: both classes are immutable after construction; const methods may be called
// from any thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedface {

inline constexpr size_t kEd25519PublicKeyBytes = 32;
inline constexpr size_t kEd25519SignatureBytes = 64;

class Ed25519PublicKey {
 public:
  // The raw 32-byte key. Fails when `raw` is not 32 bytes.
  static absl::StatusOr<Ed25519PublicKey> FromRaw(std::string_view raw);
  // Parses a PEM "PUBLIC KEY" holding an Ed25519 key. `source` names the origin in errors
  // ("vendor.pub: not a PEM public key", "...: an RSA key, expected Ed25519").
  static absl::StatusOr<Ed25519PublicKey> FromPem(std::string_view pem, std::string_view source);
  // Reads and parses a PEM public key file; errors name the file (missing, not PEM, wrong type).
  static absl::StatusOr<Ed25519PublicKey> LoadPem(const std::string& path);

  // OkStatus when `signature` is a valid Ed25519 signature of `message` by this key; otherwise
  // a PermissionDenied error ("signature does not verify", "signature is N bytes, expected 64").
  absl::Status Verify(std::string_view message, std::string_view signature) const;

  std::string ToPem() const;  // SPKI PEM text
  // Writes ToPem() to `path` (mode 0644). Refuses an existing file unless `overwrite`.
  absl::Status WritePem(const std::string& path, bool overwrite = false) const;

  const std::array<uint8_t, kEd25519PublicKeyBytes>& raw() const { return raw_; }
  std::string key_id() const;  // 16 hex characters

  bool operator==(const Ed25519PublicKey& other) const { return raw_ == other.raw_; }

 private:
  std::array<uint8_t, kEd25519PublicKeyBytes> raw_{};
};

// Move-only; the secret stays inside an OpenSSL EVP_PKEY.
class Ed25519PrivateKey {
 public:
  // A fresh key from OpenSSL's CSPRNG.
  static absl::StatusOr<Ed25519PrivateKey> Generate();
  // Parses a PEM "PRIVATE KEY" (PKCS#8, unencrypted) holding an Ed25519 key; errors name
  // `source` and the reason (not PEM, a public key given where the private key is needed, an
  // RSA/EC key, ...).
  static absl::StatusOr<Ed25519PrivateKey> FromPem(std::string_view pem, std::string_view source);
  // Reads and parses a PEM private key file; errors name the file.
  static absl::StatusOr<Ed25519PrivateKey> LoadPem(const std::string& path);

  Ed25519PrivateKey(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey& operator=(Ed25519PrivateKey&&) noexcept;
  Ed25519PrivateKey(const Ed25519PrivateKey&) = delete;
  Ed25519PrivateKey& operator=(const Ed25519PrivateKey&) = delete;
  ~Ed25519PrivateKey();

  // The 64-byte signature of `message`. Fails only on an OpenSSL internal error.
  absl::StatusOr<std::string> Sign(std::string_view message) const;

  const Ed25519PublicKey& public_key() const { return public_key_; }
  std::string key_id() const { return public_key_.key_id(); }

  std::string ToPem() const;  // PKCS#8 PEM text (secret!)
  // Writes ToPem() to `path` with mode 0600 (temporary file + rename, so a reader never sees
  // a partial key). Refuses an existing file unless `overwrite`.
  absl::Status WritePem(const std::string& path, bool overwrite = false) const;

 private:
  struct Impl;
  explicit Ed25519PrivateKey(std::unique_ptr<Impl> impl, Ed25519PublicKey pub);
  std::unique_ptr<Impl> impl_;
  Ed25519PublicKey public_key_;
};

// Writes the key pair as `private_path` (0600) and `private_path + ".pub"`. Refuses when either
// file exists unless `overwrite`; never leaves a private key without its public key.
absl::Status WriteKeyPair(const Ed25519PrivateKey& key, const std::string& private_path,
                          bool overwrite);

// The key id of a raw 32-byte public key (first 16 hex characters of its sha256).
std::string Ed25519KeyId(const std::array<uint8_t, kEd25519PublicKeyBytes>& raw);

}  // namespace fedface
