#include "partner_node/audit/tls13_key_schedule.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace fedface::partner::audit {
namespace {

constexpr size_t kTagLength = 16;
constexpr size_t kIvLength = 12;

const EVP_MD* Digest(const Tls13CipherSuite& suite) { return EVP_get_digestbyname(suite.digest); }

std::string Hmac(const Tls13CipherSuite& suite, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(Digest(suite), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

// HKDF-Expand (RFC 5869 section 2.3).
std::string HkdfExpand(const Tls13CipherSuite& suite, std::string_view prk, std::string_view info,
                       size_t length) {
  std::string out;
  std::string block;
  for (uint8_t counter = 1; out.size() < length; ++counter) {
    std::string input = block;
    input.append(info.data(), info.size());
    input.push_back(static_cast<char>(counter));
    block = Hmac(suite, prk, input);
    out += block;
  }
  out.resize(length);
  return out;
}

}  // namespace

std::optional<Tls13CipherSuite> FindTls13CipherSuite(uint16_t id) {
  switch (id) {
    case 0x1301:
      return Tls13CipherSuite{id, "TLS_AES_128_GCM_SHA256", "SHA256", 32, 16, "AES-128-GCM"};
    case 0x1302:
      return Tls13CipherSuite{id, "TLS_AES_256_GCM_SHA384", "SHA384", 48, 32, "AES-256-GCM"};
    case 0x1303:
      return Tls13CipherSuite{
          id, "TLS_CHACHA20_POLY1305_SHA256", "SHA256", 32, 32, "ChaCha20-Poly1305"};
  }
  return std::nullopt;
}

std::string HkdfExtract(const Tls13CipherSuite& suite, std::string_view salt,
                        std::string_view ikm) {
  // An absent salt is a string of HashLen zeros (RFC 5869 section 2.2).
  const std::string zeros(suite.hash_length, '\0');
  return Hmac(suite, salt.empty() ? std::string_view(zeros) : salt, ikm);
}

std::string HkdfExpandLabel(const Tls13CipherSuite& suite, std::string_view secret,
                            std::string_view label, std::string_view context, size_t length) {
  // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel;
  const std::string full_label = "tls13 " + std::string(label);
  std::string info;
  info.push_back(static_cast<char>(length >> 8));
  info.push_back(static_cast<char>(length & 0xff));
  info.push_back(static_cast<char>(full_label.size()));
  info += full_label;
  info.push_back(static_cast<char>(context.size()));
  info.append(context.data(), context.size());
  return HkdfExpand(suite, secret, info, length);
}

std::string DeriveSecret(const Tls13CipherSuite& suite, std::string_view secret,
                         std::string_view label, std::string_view transcript_hash) {
  return HkdfExpandLabel(suite, secret, label, transcript_hash, suite.hash_length);
}

std::string NextTrafficSecret(const Tls13CipherSuite& suite, std::string_view secret) {
  return HkdfExpandLabel(suite, secret, "traffic upd", "", suite.hash_length);
}

Tls13RecordOpener::Tls13RecordOpener(const Tls13CipherSuite& suite, std::string_view secret)
    : suite_(suite),
      key_(HkdfExpandLabel(suite, secret, "key", "", suite.key_length)),
      iv_(HkdfExpandLabel(suite, secret, "iv", "", kIvLength)) {}

absl::StatusOr<std::string> Tls13RecordOpener::Open(std::string_view header,
                                                    std::string_view body) {
  if (body.size() < kTagLength + 1) {
    return absl::DataLossError(
        absl::StrCat("protected record of ", body.size(), " bytes is shorter than its tag"));
  }
  // Per-record nonce: the IV XOR the 64-bit sequence number, left-padded to the IV's length.
  unsigned char nonce[kIvLength];
  for (size_t i = 0; i < kIvLength; ++i) nonce[i] = static_cast<unsigned char>(iv_[i]);
  for (int i = 0; i < 8; ++i) {
    nonce[kIvLength - 1 - i] ^= static_cast<unsigned char>(sequence_ >> (8 * i));
  }
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  const size_t text_length = body.size() - kTagLength;
  std::string plain(text_length, '\0');
  int length = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(body.data());
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_get_cipherbyname(suite_.aead), nullptr, nullptr, nullptr) ==
          1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, kIvLength, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), nonce) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &length,
                        reinterpret_cast<const unsigned char*>(header.data()),
                        static_cast<int>(header.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), out, &length, in, static_cast<int>(text_length)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagLength,
                          const_cast<unsigned char*>(in + text_length)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), out + length, &length) == 1;
  if (!ok) {
    return absl::DataLossError(
        absl::StrCat("record ", sequence_, " does not authenticate (wrong key or altered bytes)"));
  }
  // Strip the zero padding: the last non-zero byte is the content type.
  size_t end = plain.size();
  while (end > 0 && plain[end - 1] == '\0') --end;
  if (end == 0) {
    return absl::DataLossError(absl::StrCat("record ", sequence_, " holds only padding"));
  }
  plain.resize(end);
  ++sequence_;
  return plain;
}

}  // namespace fedface::partner::audit
