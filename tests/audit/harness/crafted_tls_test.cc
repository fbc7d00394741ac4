// The audit over TLS 1.3 captures built byte by byte: a session sealed here with secrets of a
// key log (each cipher suite; a KeyUpdate half-way; records split, shuffled and retransmitted
// across TCP segments), carrying a gRPC call. Decrypted, it goes through every check (a canary
// in the reply is found and placed in its message); without the key log, or with one byte of a
// record altered, the audit fails naming the connection.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <pcap/pcap.h>

#include <algorithm>
#include <memory>
#include <random>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "audit_probe.pb.h"
#include "partner_node/audit/tls13_key_schedule.h"
#include "partner_node/audit/tls_key_log.h"
#include "partner_node/audit/traffic_audit.h"
#include "tests/audit/harness/crafted_audit_fixture.h"
#include "tests/audit/harness/pcap_craft.h"
#include "tests/support/test_env.h"

namespace fedface::audit_test {
namespace {

using partner::audit::AuditReport;
using partner::audit::FindTls13CipherSuite;
using partner::audit::FormatAuditText;
using partner::audit::HkdfExpandLabel;
using partner::audit::NextTrafficSecret;
using partner::audit::Tls13CipherSuite;
using partner::audit::TlsKeyLog;
using partner::audit::ViolationKind;

constexpr char kCanary[] = "CANARY-5e2b7a9c01f34d68";

std::string Bytes(size_t n, uint8_t seed) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(seed + 31 * i);
  return out;
}

std::string U16(size_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string U24(size_t v) {
  return {static_cast<char>(v >> 16), static_cast<char>((v >> 8) & 0xff),
          static_cast<char>(v & 0xff)};
}
std::string Handshake(uint8_t type, const std::string& body) {
  return absl::StrCat(std::string(1, static_cast<char>(type)), U24(body.size()), body);
}
std::string Record(uint8_t type, const std::string& body) {
  return absl::StrCat(std::string(1, static_cast<char>(type)), "\x03\x03", U16(body.size()), body);
}

// One direction's record protection, as a TLS 1.3 sender applies it (RFC 8446 section 5.2).
class Sealer {
 public:
  Sealer(const Tls13CipherSuite& suite, const std::string& secret) : suite_(suite) { Use(secret); }
  void Use(const std::string& secret) {
    secret_ = secret;
    key_ = HkdfExpandLabel(suite_, secret, "key", "", suite_.key_length);
    iv_ = HkdfExpandLabel(suite_, secret, "iv", "", 12);
    sequence_ = 0;
  }
  void Update() { Use(NextTrafficSecret(suite_, secret_)); }
  std::string Seal(uint8_t inner_type, const std::string& content, size_t padding = 3) {
    std::string plain = content;
    plain.push_back(static_cast<char>(inner_type));
    plain.append(padding, '\0');
    const std::string header = absl::StrCat("\x17\x03\x03", U16(plain.size() + 16));
    unsigned char nonce[12];
    for (int i = 0; i < 12; ++i) nonce[i] = static_cast<unsigned char>(iv_[i]);
    for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<unsigned char>(sequence_ >> (8 * i));
    ++sequence_;
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        EVP_CIPHER_CTX_free);
    std::string out(plain.size() + 16, '\0');
    int n = 0;
    auto* o = reinterpret_cast<unsigned char*>(out.data());
    EVP_EncryptInit_ex(ctx.get(), EVP_get_cipherbyname(suite_.aead), nullptr, nullptr, nullptr);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr);
    EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr,
                       reinterpret_cast<const unsigned char*>(key_.data()), nonce);
    EVP_EncryptUpdate(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(header.data()),
                      static_cast<int>(header.size()));
    EVP_EncryptUpdate(ctx.get(), o, &n, reinterpret_cast<const unsigned char*>(plain.data()),
                      static_cast<int>(plain.size()));
    EVP_EncryptFinal_ex(ctx.get(), o + n, &n);
    EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, 16, o + plain.size());
    return header + out;
  }

 private:
  Tls13CipherSuite suite_;
  std::string secret_, key_, iv_;
  uint64_t sequence_ = 0;
};

struct TlsSession {
  std::string client_bytes;
  std::string server_bytes;
  std::string key_log;  // as gRPC 1.51 writes it: bare '\r' line ends
};

// A TLS 1.3 session carrying `exchange`: hellos in clear, the handshake flights sealed with the
// handshake secrets, the HTTP/2 bytes in application records of at most `record_bytes`; the
// server sends a KeyUpdate after its first application record.
TlsSession MakeSession(uint16_t suite_id, const Http2Exchange& exchange, size_t record_bytes,
                       bool hello_retry = false) {
  const Tls13CipherSuite suite = *FindTls13CipherSuite(suite_id);
  const std::string random = Bytes(32, static_cast<uint8_t>(suite_id));
  const std::string secrets[4] = {Bytes(suite.hash_length, 1), Bytes(suite.hash_length, 2),
                                  Bytes(suite.hash_length, 3), Bytes(suite.hash_length, 4)};
  const char* labels[4] = {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                           "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0"};
  TlsSession s;
  for (int i = 0; i < 4; ++i) {
    absl::StrAppend(&s.key_log, labels[i], " ", absl::BytesToHexString(random), " ",
                    absl::BytesToHexString(secrets[i]), "\r");
  }
  const std::string client_hello = absl::StrCat("\x03\x03", random, std::string(1, '\0'), U16(2),
                                                U16(suite_id), std::string("\x01\x00", 2), U16(0));
  const std::string server_hello =
      absl::StrCat("\x03\x03", Bytes(32, 99), std::string(1, '\0'), U16(suite_id),
                   std::string(1, '\0'), U16(6), U16(43), U16(2), U16(0x0304));
  s.client_bytes = Record(22, Handshake(1, client_hello));
  if (hello_retry) {
    // A HelloRetryRequest (RFC 8446 section 4.1.4): a ServerHello whose random is the fixed
    // SHA-256("HelloRetryRequest"); the client answers with a second ClientHello.
    std::string retry = server_hello;
    retry.replace(
        2, 32,
        absl::HexStringToBytes("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"));
    s.server_bytes = Record(22, Handshake(2, retry));
    s.client_bytes += Record(20, "\x01") + Record(22, Handshake(1, client_hello));
  }
  s.server_bytes += Record(22, Handshake(2, server_hello)) + Record(20, "\x01");
  Sealer server(suite, secrets[1]);
  s.server_bytes += server.Seal(
      22, Handshake(8, U16(0)) + Handshake(20, Bytes(suite.hash_length, 7)));  // EE, Finished
  Sealer client(suite, secrets[0]);
  if (!hello_retry) s.client_bytes += Record(20, "\x01");
  s.client_bytes += client.Seal(22, Handshake(20, Bytes(suite.hash_length, 8)));
  client.Use(secrets[2]);
  server.Use(secrets[3]);
  for (size_t at = 0; at < exchange.client_bytes.size(); at += record_bytes) {
    s.client_bytes += client.Seal(23, exchange.client_bytes.substr(at, record_bytes));
  }
  for (size_t at = 0; at < exchange.server_bytes.size(); at += record_bytes) {
    s.server_bytes += server.Seal(23, exchange.server_bytes.substr(at, record_bytes), at % 5);
    if (at == 0) {
      s.server_bytes += server.Seal(22, Handshake(24, std::string(1, '\0')));  // KeyUpdate
      server.Update();
    }
  }
  s.client_bytes += client.Seal(21, std::string("\x01\x00", 2));  // close_notify
  s.server_bytes += server.Seal(21, std::string("\x01\x00", 2));
  return s;
}

std::string ProbeReply(const std::string& label) {
  audittest::ProbeReply reply;
  reply.set_sequence(7);
  reply.set_payload(std::string(900, 'p'));
  reply.set_label(label);
  return reply.SerializeAsString();
}

std::string ProbeRequest() {
  audittest::ProbeRequest request;
  request.set_note(std::string(300, 'n'));
  return request.SerializeAsString();
}

class CraftedTlsTest : public ::testing::TestWithParam<uint16_t>, public CraftedAudit {
 protected:
  void SetUp() override { PrepareAudit("crafted-tls", kCanary); }

  // The session's bytes cut into 97-byte segments, the server's shuffled and some sent twice
  // (loopback captures do reorder), written as one pcap. `flip` alters one byte of the server's
  // stream at that offset (0: none).
  std::string WriteCapture(const TlsSession& s, const std::string& name, size_t flip = 0) {
    std::string server_bytes = s.server_bytes;
    if (flip) server_bytes[flip] ^= 0x20;
    std::vector<TcpPiece> pieces = CutIntoPieces(true, s.client_bytes, 97);
    std::vector<TcpPiece> server = CutIntoPieces(false, server_bytes, 97);
    std::mt19937 rng(7);
    std::shuffle(server.begin() + 1, server.end(), rng);
    for (size_t i = 0; i < server.size(); ++i) {
      pieces.push_back(server[i]);
      if (i % 4 == 0) pieces.push_back(server[i]);
    }
    PcapCrafter pcap(DLT_EN10MB);
    AddConnection(pcap, vendor_, partner_, pieces, s.client_bytes.size(), server_bytes.size());
    const std::string path = dir_ + "/" + name + ".pcap";
    EXPECT_TRUE(pcap.Write(path).ok());
    return path;
  }

  const Endpoint vendor_ = MakeEndpoint("10.9.0.1", 41000);
  const Endpoint partner_ = MakeEndpoint("10.9.0.2", kCraftedPartnerPort);
};

TEST_P(CraftedTlsTest, DecryptsShuffledRecordsAcrossAKeyUpdateAndPassesACleanCall) {
  const Http2Exchange x = MakeUnaryExchange(kCraftedEchoPath, ProbeRequest(), ProbeReply("fine"));
  const TlsSession s = MakeSession(GetParam(), x, 400);
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(s.key_log, "keys").ok());
  const AuditReport r = AuditFile(WriteCapture(s, "clean"), &keys);
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  ASSERT_EQ(r.connections.size(), 1u);
  const auto& c = r.connections[0];
  EXPECT_TRUE(c.tls_decrypted);
  EXPECT_EQ(c.tls, FindTls13CipherSuite(GetParam())->name);
  EXPECT_EQ(c.tls_key_updates, 1u);
  EXPECT_EQ(c.tls_plaintext_bytes[0], x.client_bytes.size());
  EXPECT_EQ(c.tls_plaintext_bytes[1], x.server_bytes.size());
  EXPECT_EQ(c.messages[0], 1u);
  EXPECT_EQ(c.messages[1], 1u);
  EXPECT_GT(c.tcp[1].reordered_segments, 0u);
  EXPECT_EQ(r.tls_decrypted_bytes, x.client_bytes.size() + x.server_bytes.size());
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_EQ(r.sent[0].type, "fedface.audittest.ProbeReply");
  // Every byte on the wire counts as sent (records, tags, hellos).
  EXPECT_EQ(r.bytes_left_partner, s.server_bytes.size());
}

TEST_P(CraftedTlsTest, FindsACanaryInsideTheDecryptedReplyAtItsMessage) {
  const Http2Exchange x = MakeUnaryExchange(kCraftedEchoPath, ProbeRequest(), ProbeReply(kCanary));
  const TlsSession s = MakeSession(GetParam(), x, 40);  // the canary spans records
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(s.key_log, "keys").ok());
  const AuditReport r = AuditFile(WriteCapture(s, "canary"), &keys);
  EXPECT_FALSE(r.passed());
  ASSERT_EQ(Count(r, ViolationKind::kCanary), 1) << FormatAuditText(r);
  for (const auto& v : r.violations) {
    if (v.kind != ViolationKind::kCanary) continue;
    EXPECT_EQ(v.where.http2_stream, 1u);
    EXPECT_EQ(v.where.message_index, 0);
    EXPECT_TRUE(v.where.from_partner);
  }
  // The ciphertext alone shows nothing: without the key log the canary is not seen, and the
  // connection fails as undecryptable instead of passing.
  const AuditReport blind = AuditFile(WriteCapture(s, "canary-blind"), nullptr);
  EXPECT_FALSE(blind.passed());
  EXPECT_EQ(Count(blind, ViolationKind::kCanary), 0);
  ASSERT_GE(Count(blind, ViolationKind::kTlsUndecrypted), 1) << FormatAuditText(blind);
  EXPECT_NE(FormatAuditText(blind).find("TLS connection 10.9.0.1:41000 -> 10.9.0.2:50051 cannot "
                                        "be audited"),
            std::string::npos)
      << FormatAuditText(blind);
}

TEST_P(CraftedTlsTest, FollowsAHelloRetryRequest) {
  const Http2Exchange x = MakeUnaryExchange(kCraftedEchoPath, ProbeRequest(), ProbeReply("fine"));
  const TlsSession s = MakeSession(GetParam(), x, 400, /*hello_retry=*/true);
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(s.key_log, "keys").ok());
  const AuditReport r = AuditFile(WriteCapture(s, "retry"), &keys);
  EXPECT_TRUE(r.passed()) << FormatAuditText(r);
  ASSERT_EQ(r.connections.size(), 1u);
  EXPECT_TRUE(r.connections[0].tls_decrypted);
  EXPECT_EQ(r.sent.size(), 1u);
}

TEST_P(CraftedTlsTest, AnAlteredRecordFailsTheAuditNamingTheConnection) {
  const Http2Exchange x = MakeUnaryExchange(kCraftedEchoPath, ProbeRequest(), ProbeReply("fine"));
  const TlsSession s = MakeSession(GetParam(), x, 400);
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(s.key_log, "keys").ok());
  const AuditReport r = AuditFile(WriteCapture(s, "altered", s.server_bytes.size() - 60), &keys);
  EXPECT_FALSE(r.passed());
  ASSERT_EQ(Count(r, ViolationKind::kTlsUndecrypted), 1) << FormatAuditText(r);
  const std::string text = FormatAuditText(r);
  EXPECT_NE(text.find("does not authenticate"), std::string::npos) << text;
  EXPECT_NE(text.find("10.9.0.2:50051"), std::string::npos) << text;
  EXPECT_FALSE(r.connections[0].tls_decrypted);
}

INSTANTIATE_TEST_SUITE_P(EachSuite, CraftedTlsTest, ::testing::Values(0x1301, 0x1302, 0x1303),
                         [](const ::testing::TestParamInfo<uint16_t>& p) {
                           return std::string(FindTls13CipherSuite(p.param)->name);
                         });

}  // namespace
}  // namespace fedface::audit_test
