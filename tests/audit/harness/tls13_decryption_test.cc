// The audit's TLS 1.3 decryption, from RFC 8448's published trace: the key schedule, the traffic
// keys, record opening, a whole session through Tls13StreamDecryptor with a gRPC-style key log
// (bare '\r' line ends), and the failures that must not pass (altered record, missing secrets,
// missing bytes, no key log).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "partner_node/audit/tcp_reassembler.h"
#include "partner_node/audit/tls13_key_schedule.h"
#include "partner_node/audit/tls13_stream_decryptor.h"
#include "partner_node/audit/tls_key_log.h"
#include "tests/audit/harness/rfc8448_vectors.h"

namespace fedface::partner::audit {
namespace {

namespace v = rfc8448;

std::string H(const char* hex) {
  return absl::HexStringToBytes(absl::StrReplaceAll(hex, {{" ", ""}}));
}
std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }
std::string HexOf(const char* hex) { return Hex(H(hex)); }

const Tls13CipherSuite& Aes128() {
  static const Tls13CipherSuite suite = *FindTls13CipherSuite(0x1301);
  return suite;
}

std::string AppPayload() {
  std::string out;
  for (int i = 0; i < 50; ++i) out.push_back(static_cast<char>(i));
  return out;
}

TEST(Tls13KeySchedule, MatchesRfc8448) {
  const Tls13CipherSuite& s = Aes128();
  const std::string zeros(32, '\0');
  const std::string early = HkdfExtract(s, "", zeros);
  EXPECT_EQ(Hex(early), HexOf(v::kEarlySecret));
  const std::string derived = DeriveSecret(s, early, "derived", H(v::kEmptyHash));
  EXPECT_EQ(Hex(derived), HexOf(v::kDerivedEarly));
  const std::string handshake = HkdfExtract(s, derived, H(v::kEcdheShared));
  EXPECT_EQ(Hex(handshake), HexOf(v::kHandshakeSecret));
  EXPECT_EQ(Hex(DeriveSecret(s, handshake, "c hs traffic", H(v::kHelloHash))),
            HexOf(v::kClientHandshakeTraffic));
  EXPECT_EQ(Hex(DeriveSecret(s, handshake, "s hs traffic", H(v::kHelloHash))),
            HexOf(v::kServerHandshakeTraffic));
  const std::string derived2 = DeriveSecret(s, handshake, "derived", H(v::kEmptyHash));
  EXPECT_EQ(Hex(derived2), HexOf(v::kDerivedHandshake));
  const std::string master = HkdfExtract(s, derived2, zeros);
  EXPECT_EQ(Hex(master), HexOf(v::kMasterSecret));
  EXPECT_EQ(Hex(DeriveSecret(s, master, "c ap traffic", H(v::kFinishedHash))),
            HexOf(v::kClientAppTraffic));
  EXPECT_EQ(Hex(DeriveSecret(s, master, "s ap traffic", H(v::kFinishedHash))),
            HexOf(v::kServerAppTraffic));
}

TEST(Tls13KeySchedule, TrafficKeysMatchRfc8448) {
  const struct {
    const char* secret;
    const char* key;
    const char* iv;
  } cases[] = {{v::kServerHandshakeTraffic, v::kServerHandshakeKey, v::kServerHandshakeIv},
               {v::kClientHandshakeTraffic, v::kClientHandshakeKey, v::kClientHandshakeIv},
               {v::kServerAppTraffic, v::kServerAppKey, v::kServerAppIv},
               {v::kClientAppTraffic, v::kClientAppKey, v::kClientAppIv}};
  for (const auto& c : cases) {
    Tls13RecordOpener opener(Aes128(), H(c.secret));
    EXPECT_EQ(Hex(opener.key()), HexOf(c.key));
    EXPECT_EQ(Hex(opener.iv()), HexOf(c.iv));
  }
}

TEST(Tls13KeySchedule, OpensRfc8448RecordsInSequence) {
  Tls13RecordOpener server(Aes128(), H(v::kServerAppTraffic));
  const std::string ticket = H(v::kNewSessionTicketRecord);
  absl::StatusOr<std::string> first = server.Open(ticket.substr(0, 5), ticket.substr(5));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->back(), 22);  // handshake: the NewSessionTicket
  EXPECT_EQ((*first)[0], 4);     // msg_type new_session_ticket
  const std::string app = H(v::kServerAppRecord);
  absl::StatusOr<std::string> second = server.Open(app.substr(0, 5), app.substr(5));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, AppPayload() + "\x17");
  EXPECT_EQ(server.sequence(), 2u);

  // The same record at the wrong sequence number (nonce) does not authenticate.
  Tls13RecordOpener fresh(Aes128(), H(v::kServerAppTraffic));
  absl::StatusOr<std::string> wrong = fresh.Open(app.substr(0, 5), app.substr(5));
  EXPECT_FALSE(wrong.ok());
  EXPECT_EQ(fresh.sequence(), 0u);
}

TEST(Tls13KeySchedule, KeyUpdateSecretIsAnExpandLabel) {
  const Tls13CipherSuite& s = Aes128();
  const std::string secret = H(v::kClientAppTraffic);
  EXPECT_EQ(NextTrafficSecret(s, secret), HkdfExpandLabel(s, secret, "traffic upd", "", 32));
  EXPECT_NE(NextTrafficSecret(s, secret), secret);
}

// A key log as gRPC 1.51 writes it: each line ended by a bare '\r'.
std::string GrpcStyleKeyLog(bool with_client_app = true) {
  const std::string random = absl::StrReplaceAll(v::kClientRandom, {{" ", ""}});
  auto line = [&](const char* label, const char* secret) {
    return absl::StrCat(label, " ", random, " ", absl::StrReplaceAll(secret, {{" ", ""}}), "\r");
  };
  std::string out = line("CLIENT_HANDSHAKE_TRAFFIC_SECRET", v::kClientHandshakeTraffic);
  out += line("SERVER_HANDSHAKE_TRAFFIC_SECRET", v::kServerHandshakeTraffic);
  if (with_client_app) out += line("CLIENT_TRAFFIC_SECRET_0", v::kClientAppTraffic);
  out += line("SERVER_TRAFFIC_SECRET_0", v::kServerAppTraffic);
  return out;
}

TEST(TlsKeyLog, ReadsBareCarriageReturnLinesAndNormalizesThem) {
  TlsKeyLog log;
  ASSERT_TRUE(log.Add(GrpcStyleKeyLog(), "grpc.keys").ok());
  EXPECT_EQ(log.entries(), 4u);
  EXPECT_EQ(log.sessions(), 1u);
  const std::string* secret = log.Find(H(v::kClientRandom), "SERVER_TRAFFIC_SECRET_0");
  ASSERT_NE(secret, nullptr);
  EXPECT_EQ(Hex(*secret), HexOf(v::kServerAppTraffic));
  EXPECT_EQ(log.Find(H(v::kClientRandom), "EXPORTER_SECRET"), nullptr);

  const std::string normalized = NormalizeKeyLogLineEndings(GrpcStyleKeyLog() + "A\r\nB\n");
  EXPECT_EQ(normalized.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(normalized.begin(), normalized.end(), '\n'), 6);
}

TEST(TlsKeyLog, NamesTheMalformedLine) {
  TlsKeyLog log;
  absl::Status s = log.Add("# comment\nCLIENT_RANDOM abc def\n", "keys.log");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("keys.log:2"), std::string::npos) << s;
}

struct Collected : TlsDecryptEvents {
  std::string plain[2];
  std::vector<std::string> failures[2];
  int controls[2] = {0, 0};
  void OnTlsPlaintext(Side side, uint64_t offset, std::string_view bytes,
                      const PacketPosition&) override {
    EXPECT_EQ(offset, plain[static_cast<int>(side)].size());
    plain[static_cast<int>(side)].append(bytes);
  }
  void OnTlsControl(Side side, uint64_t, std::string_view, const PacketPosition&) override {
    ++controls[static_cast<int>(side)];
  }
  void OnTlsFailure(Side side, uint64_t, const std::string& why) override {
    failures[static_cast<int>(side)].push_back(why);
  }
};

// Feeds the RFC 8448 session in capture order; the client's bytes in small pieces so that
// records span TCP segments. `alter` flips a byte of the client's application record.
struct Session {
  std::string client;
  std::string server;
  uint64_t offsets[2] = {0, 0};
  Tls13StreamDecryptor* d;
  void Send(Side side, const std::string& bytes) {
    const int i = static_cast<int>(side);
    for (size_t at = 0; at < bytes.size(); at += 7) {
      const std::string piece = bytes.substr(at, 7);
      d->Feed(side, offsets[i], piece, PacketPosition{});
      offsets[i] += piece.size();
    }
  }
};

void RunRfc8448Session(Tls13StreamDecryptor& d, bool alter_client_app) {
  Session s{.d = &d};
  const std::string hello = H(v::kClientHello);
  s.Send(Side::kClient, absl::StrCat(H("16 03 01 00 c4"), hello));
  s.Send(Side::kServer, H(v::kServerHelloRecord) + H(v::kServerFlightRecord));
  s.Send(Side::kClient, H(v::kClientFinishedRecord));
  s.Send(Side::kServer, H(v::kNewSessionTicketRecord));
  std::string app = H(v::kClientAppRecord);
  if (alter_client_app) app[20] ^= 0x01;
  s.Send(Side::kClient, app);
  s.Send(Side::kServer, H(v::kServerAppRecord));
  s.Send(Side::kClient, H(v::kClientAlertRecord));
  s.Send(Side::kServer, H(v::kServerAlertRecord));
  d.Finish();
}

TEST(Tls13StreamDecryptor, DecryptsTheRfc8448SessionWithAGrpcKeyLog) {
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(GrpcStyleKeyLog(), "grpc.keys").ok());
  Collected events;
  Tls13StreamDecryptor d(&keys, &events);
  RunRfc8448Session(d, false);
  EXPECT_TRUE(events.failures[0].empty()) << events.failures[0].front();
  EXPECT_TRUE(events.failures[1].empty()) << events.failures[1].front();
  EXPECT_EQ(events.plain[0], AppPayload());
  EXPECT_EQ(events.plain[1], AppPayload());
  EXPECT_EQ(d.summary().cipher_suite, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(d.summary().records[0], 3u);  // Finished, data, close_notify
  EXPECT_EQ(d.summary().records[1], 4u);  // flight, ticket, data, close_notify
  EXPECT_EQ(d.summary().plaintext_bytes[0], 50u);
}

TEST(Tls13StreamDecryptor, AnAlteredRecordFailsThatSide) {
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(GrpcStyleKeyLog(), "grpc.keys").ok());
  Collected events;
  Tls13StreamDecryptor d(&keys, &events);
  RunRfc8448Session(d, true);
  ASSERT_EQ(events.failures[0].size(), 1u);
  EXPECT_NE(events.failures[0][0].find("does not authenticate"), std::string::npos)
      << events.failures[0][0];
  EXPECT_EQ(events.plain[0], "");
  EXPECT_TRUE(events.failures[1].empty());
  EXPECT_EQ(events.plain[1], AppPayload());
}

TEST(Tls13StreamDecryptor, MissingSecretsAndMissingKeyLogFail) {
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(GrpcStyleKeyLog(/*with_client_app=*/false), "grpc.keys").ok());
  Collected partial;
  Tls13StreamDecryptor d(&keys, &partial);
  RunRfc8448Session(d, false);
  ASSERT_EQ(partial.failures[0].size(), 1u);
  EXPECT_NE(partial.failures[0][0].find("no CLIENT_TRAFFIC_SECRET_0"), std::string::npos)
      << partial.failures[0][0];

  Collected none;
  Tls13StreamDecryptor without(nullptr, &none);
  RunRfc8448Session(without, false);
  ASSERT_EQ(none.failures[0].size(), 1u);
  ASSERT_EQ(none.failures[1].size(), 1u);
  EXPECT_NE(none.failures[1][0].find("--tls-keylog"), std::string::npos) << none.failures[1][0];
}

TEST(Tls13StreamDecryptor, MissingBytesAndCutRecordsFail) {
  TlsKeyLog keys;
  ASSERT_TRUE(keys.Add(GrpcStyleKeyLog(), "grpc.keys").ok());
  Collected events;
  Tls13StreamDecryptor d(&keys, &events);
  const std::string hello = absl::StrCat(H("16 03 01 00 c4"), H(v::kClientHello));
  d.Feed(Side::kClient, 0, hello, {});
  d.Feed(Side::kServer, 0, H(v::kServerHelloRecord), {});
  d.OnGap(Side::kServer, 95, 100);
  const std::string fin = H(v::kClientFinishedRecord);
  d.Feed(Side::kClient, hello.size(), fin.substr(0, 30), {});
  d.Finish();
  ASSERT_EQ(events.failures[1].size(), 1u);
  EXPECT_NE(events.failures[1][0].find("were not captured"), std::string::npos);
  ASSERT_EQ(events.failures[0].size(), 1u);
  EXPECT_NE(events.failures[0][0].find("cut off"), std::string::npos) << events.failures[0][0];
}

TEST(Tls13StreamDecryptor, Tls12IsRefusedNotPassed) {
  Collected events;
  Tls13StreamDecryptor d(nullptr, &events);
  d.Feed(Side::kClient, 0, absl::StrCat(H("16 03 01 00 c4"), H(v::kClientHello)), {});
  // The RFC's ServerHello without its supported_versions extension (a TLS 1.2 answer).
  std::string hello = H(v::kServerHelloRecord);
  hello.resize(hello.size() - 6);
  hello[4] = static_cast<char>(0x5a - 6);
  hello[8] = static_cast<char>(0x56 - 6);
  hello[static_cast<size_t>(5 + 4 + 2 + 32 + 1 + 2 + 1) + 1] = static_cast<char>(0x2e - 6);
  d.Feed(Side::kServer, 0, hello, {});
  d.Finish();
  ASSERT_EQ(events.failures[1].size(), 1u);
  EXPECT_NE(events.failures[1][0].find("not TLS 1.3"), std::string::npos) << events.failures[1][0];
}

}  // namespace
}  // namespace fedface::partner::audit
