// The TLS 1.3 key schedule (RFC 8446 section 7) and record protection (section 5.2), written
// for the traffic audit: from a traffic secret (taken from an NSS key log) to the AEAD key and
// IV of each direction, and the opening of one protected record. Checked against the RFC 8448
// test vectors (tests/audit/harness/tls13_decryption_test.cc).
//
// Only the three TLS 1.3 cipher suites gRPC's OpenSSL negotiates are known:
// TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256.
//
// Thread safety: free functions and a value class.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace fedface::partner::audit {

struct Tls13CipherSuite {
  uint16_t id = 0;
  const char* name = "";
  const char* digest = "";  // OpenSSL digest name of the suite's hash
  size_t hash_length = 0;
  size_t key_length = 0;
  const char* aead = "";  // OpenSSL cipher name
};

// The suite with IANA id `id`, or nullopt when it is not a TLS 1.3 suite known here.
std::optional<Tls13CipherSuite> FindTls13CipherSuite(uint16_t id);

// HKDF-Extract(salt, ikm) (RFC 5869) with the suite's hash.
std::string HkdfExtract(const Tls13CipherSuite& suite, std::string_view salt, std::string_view ikm);
// HKDF-Expand-Label(secret, label, context, length) (RFC 8446 section 7.1): "tls13 " is added.
std::string HkdfExpandLabel(const Tls13CipherSuite& suite, std::string_view secret,
                            std::string_view label, std::string_view context, size_t length);
// Derive-Secret(secret, label, transcript_hash): the hash is given, not the messages.
std::string DeriveSecret(const Tls13CipherSuite& suite, std::string_view secret,
                         std::string_view label, std::string_view transcript_hash);
// application_traffic_secret_N+1 (RFC 8446 section 7.2, after a KeyUpdate).
std::string NextTrafficSecret(const Tls13CipherSuite& suite, std::string_view secret);

// Opens the records of one direction protected with one traffic secret, in order: the record
// sequence number starts at 0 and grows with each record opened.
class Tls13RecordOpener {
 public:
  Tls13RecordOpener(const Tls13CipherSuite& suite, std::string_view traffic_secret);

  const std::string& key() const { return key_; }
  const std::string& iv() const { return iv_; }
  uint64_t sequence() const { return sequence_; }

  // `header` is the record's 5 bytes (the AAD), `body` the encrypted record with its 16-byte
  // tag. On success returns the TLSInnerPlaintext with its padding removed: the content, then
  // the real content type as the last byte. Fails (sequence unchanged) when the tag does not
  // verify or the inner plaintext is all padding.
  absl::StatusOr<std::string> Open(std::string_view header, std::string_view body);

 private:
  Tls13CipherSuite suite_;
  std::string key_;
  std::string iv_;
  uint64_t sequence_ = 0;
};

}  // namespace fedface::partner::audit
