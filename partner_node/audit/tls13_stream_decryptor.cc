#include "partner_node/audit/tls13_stream_decryptor.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "partner_node/audit/tcp_reassembler.h"

namespace fedface::partner::audit {
namespace {

constexpr uint8_t kChangeCipherSpec = 20;
constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;

constexpr uint8_t kClientHello = 1;
constexpr uint8_t kServerHello = 2;
constexpr uint8_t kFinished = 20;
constexpr uint8_t kKeyUpdate = 24;

constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordBody = (1u << 14) + 256;  // RFC 8446 section 5.2
constexpr size_t kMaxHandshakeMessage = size_t{1} << 20;
constexpr uint16_t kSupportedVersions = 43;
constexpr uint16_t kTls13 = 0x0304;

// SHA-256("HelloRetryRequest"): the ServerHello.random of a HelloRetryRequest (section 4.1.3).
constexpr unsigned char kHelloRetryRandom[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

int Index(Side side) { return static_cast<int>(side); }
const char* SideName(Side side) { return side == Side::kClient ? "client" : "server"; }

uint32_t Be(std::string_view bytes, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

// A bounds-checked reader over one handshake message body.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Skip(size_t n) {
    if (data_.size() - pos_ < n) return false;
    pos_ += n;
    return true;
  }
  bool Read(size_t n, std::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Int(size_t n, uint32_t* out) {
    std::string_view bytes;
    if (!Read(n, &bytes)) return false;
    *out = Be(bytes, 0, n);
    return true;
  }
  // A vector with an n-byte length prefix.
  bool Vector(size_t n, std::string_view* out) {
    uint32_t length = 0;
    return Int(n, &length) && Read(length, out);
  }
  bool empty() const { return pos_ == data_.size(); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

Tls13StreamDecryptor::Tls13StreamDecryptor(const TlsKeyLog* keys, TlsDecryptEvents* events)
    : keys_(keys), events_(events) {}

void Tls13StreamDecryptor::Fail(Side side, uint64_t offset, std::string why) {
  SideState& s = sides_[Index(side)];
  if (s.failed) return;
  s.failed = true;
  summary_.failed[Index(side)] = true;
  s.buffer.clear();
  s.queued.clear();
  events_->OnTlsFailure(side, offset, why);
}

void Tls13StreamDecryptor::Feed(Side side, uint64_t offset, std::string_view bytes,
                                const PacketPosition& from) {
  SideState& s = sides_[Index(side)];
  if (s.failed || bytes.empty()) return;
  if (!s.buffer_started) {
    s.buffer_started = true;
    s.buffer_offset = offset;
  }
  s.buffer.append(bytes.data(), bytes.size());
  size_t pos = 0;
  while (s.buffer.size() - pos >= kRecordHeader) {
    const std::string_view view(s.buffer);
    const uint8_t type = static_cast<uint8_t>(view[pos]);
    const size_t length = Be(view, pos + 3, 2);
    if (type < kChangeCipherSpec || type > kApplicationData || view[pos + 1] != 0x03 ||
        length > kMaxRecordBody) {
      Fail(side, s.buffer_offset + pos,
           absl::StrCat("the ", SideName(side), "'s bytes at offset ", s.buffer_offset + pos,
                        " are not a TLS record (header ",
                        absl::BytesToHexString(absl::string_view(view.data() + pos, kRecordHeader)),
                        ")"));
      return;
    }
    if (s.buffer.size() - pos < kRecordHeader + length) break;
    Record record;
    record.type = type;
    record.header = std::string(view.substr(pos, kRecordHeader));
    record.body = std::string(view.substr(pos + kRecordHeader, length));
    record.offset = s.buffer_offset + pos;
    record.from = from;
    pos += kRecordHeader + length;
    HandleRecord(side, std::move(record));
    if (s.failed) return;
  }
  s.buffer.erase(0, pos);
  s.buffer_offset += pos;
}

void Tls13StreamDecryptor::OnGap(Side side, uint64_t offset, uint64_t length) {
  if (length == kUnknownLength) {
    Fail(side, offset,
         absl::StrCat("the start of the ", SideName(side),
                      "'s stream was not captured: its hello and record boundaries are unknown"));
    return;
  }
  Fail(side, offset,
       absl::StrCat(length, " bytes of the ", SideName(side), "'s stream at offset ", offset,
                    " were not captured: the TLS records from there on cannot be decrypted"));
}

void Tls13StreamDecryptor::HandleRecord(Side side, Record record) {
  SideState& s = sides_[Index(side)];
  switch (record.type) {
    case kChangeCipherSpec:
      // Middlebox compatibility (RFC 8446 appendix D.4): one byte, carries nothing.
      if (record.body != std::string_view("\x01", 1) || s.phase == Phase::kApplication) {
        Fail(side, record.offset, "unexpected change_cipher_spec record");
      }
      return;
    case kAlert:
      // An alert in clear is two bytes (level, description); anything longer is not an alert.
      if (record.body.size() != 2) {
        Fail(side, record.offset,
             absl::StrCat("a clear alert record of ", record.body.size(), " bytes"));
        return;
      }
      events_->OnTlsControl(side, record.offset, record.body, record.from);
      return;
    case kHandshake:
      if (s.phase != Phase::kClear) {
        Fail(side, record.offset, "a handshake record in clear after the keys changed");
        return;
      }
      HandleClearHandshake(side, record);
      return;
    case kApplicationData:
      break;
  }
  if (s.phase == Phase::kClear) {
    if (!client_random_ || !suite_) {
      // The other side's hello is not read yet (reordered delivery): wait for it.
      s.queued_bytes += record.body.size();
      if (s.queued_bytes > kMaxQueuedBytes) {
        Fail(side, record.offset,
             "protected records before any ServerHello/ClientHello: no keys can be chosen");
        return;
      }
      s.queued.push_back(std::move(record));
      return;
    }
    if (!UseSecret(side,
                   side == Side::kClient ? "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
                                         : "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                   record.offset)) {
      return;
    }
    s.phase = Phase::kHandshake;
  }
  HandleProtected(side, record);
}

bool Tls13StreamDecryptor::UseSecret(Side side, const char* label, uint64_t offset) {
  SideState& s = sides_[Index(side)];
  const std::string* secret = keys_ ? keys_->Find(*client_random_, label) : nullptr;
  if (secret == nullptr) {
    Fail(side, offset,
         keys_ == nullptr
             ? std::string("no TLS key log was given (--tls-keylog): the records cannot be "
                           "decrypted")
             : absl::StrCat("the key log has no ", label, " for this session (client random ",
                            absl::BytesToHexString(*client_random_), ")"));
    return false;
  }
  if (secret->size() != suite_->hash_length) {
    Fail(side, offset,
         absl::StrCat("the key log's ", label, " has ", secret->size(), " bytes; ", suite_->name,
                      " needs ", suite_->hash_length));
    return false;
  }
  s.secret = *secret;
  s.opener.emplace(*suite_, s.secret);
  return true;
}

void Tls13StreamDecryptor::HandleClearHandshake(Side side, const Record& record) {
  SideState& s = sides_[Index(side)];
  events_->OnTlsControl(side, record.offset, record.body, record.from);
  s.handshake += record.body;
  while (s.handshake.size() >= 4) {
    const size_t length = Be(s.handshake, 1, 3);
    if (length > kMaxHandshakeMessage) {
      Fail(side, record.offset, "a handshake message of more than 1 MiB");
      return;
    }
    if (s.handshake.size() < 4 + length) return;
    const std::string message = s.handshake.substr(0, 4 + length);
    s.handshake.erase(0, 4 + length);
    if (!ParseHello(side, message, record.offset)) return;
  }
}

bool Tls13StreamDecryptor::ParseHello(Side side, std::string_view message, uint64_t offset) {
  const uint8_t type = static_cast<uint8_t>(message[0]);
  Reader r(message.substr(4));
  std::string_view random;
  std::string_view session_id;
  if (side == Side::kClient) {
    if (type != kClientHello) {
      Fail(side, offset,
           absl::StrCat("handshake message type ", type, " in clear from the client"));
      return false;
    }
    if (!r.Skip(2) || !r.Read(32, &random)) {
      Fail(side, offset, "a ClientHello too short to hold its random");
      return false;
    }
    // A second ClientHello (after a HelloRetryRequest) keeps the first one's random.
    if (!client_random_) client_random_ = std::string(random);
    return true;
  }
  uint32_t suite_id = 0;
  std::string_view extensions;
  if (type != kServerHello || !r.Skip(2) || !r.Read(32, &random) || !r.Vector(1, &session_id) ||
      !r.Int(2, &suite_id) || !r.Skip(1) || !r.Vector(2, &extensions)) {
    Fail(side, offset,
         type == kServerHello
             ? std::string("a malformed ServerHello")
             : absl::StrCat("handshake message type ", type, " in clear from the server"));
    return false;
  }
  uint32_t version = 0;
  for (Reader e(extensions); !e.empty();) {
    uint32_t ext_type = 0;
    std::string_view data;
    if (!e.Int(2, &ext_type) || !e.Vector(2, &data)) {
      Fail(side, offset, "a ServerHello with malformed extensions");
      return false;
    }
    if (ext_type == kSupportedVersions && data.size() == 2) version = Be(data, 0, 2);
  }
  if (version != kTls13) {
    Fail(side, offset,
         "the session is not TLS 1.3 (no supported_versions 0x0304 in the ServerHello): only "
         "TLS 1.3 is decrypted");
    return false;
  }
  if (random == std::string_view(reinterpret_cast<const char*>(kHelloRetryRandom), 32)) {
    summary_.hello_retry = true;  // a second ServerHello follows
    return true;
  }
  suite_ = FindTls13CipherSuite(static_cast<uint16_t>(suite_id));
  if (!suite_) {
    Fail(side, offset, absl::StrCat("unknown TLS 1.3 cipher suite 0x", absl::Hex(suite_id)));
    return false;
  }
  summary_.cipher_suite = suite_->name;
  // The client's records that waited for this hello.
  for (Side other : {Side::kClient, Side::kServer}) {
    SideState& o = sides_[Index(other)];
    if (o.failed || o.queued.empty()) continue;
    if (!client_random_) {
      Fail(other, o.queued.front().offset, "the ClientHello was not captured");
      continue;
    }
    std::vector<Record> queued = std::move(o.queued);
    o.queued.clear();
    o.queued_bytes = 0;
    for (Record& q : queued) {
      HandleRecord(other, std::move(q));
      if (o.failed) break;
    }
  }
  return !sides_[Index(side)].failed;
}

void Tls13StreamDecryptor::HandleProtected(Side side, const Record& record) {
  SideState& s = sides_[Index(side)];
  absl::StatusOr<std::string> plain = s.opener->Open(record.header, record.body);
  if (!plain.ok()) {
    Fail(side, record.offset,
         absl::StrCat("the ", SideName(side), "'s TLS record at offset ", record.offset, " (",
                      s.phase == Phase::kHandshake ? "handshake" : "application",
                      " keys): ", plain.status().message()));
    return;
  }
  ++summary_.records[Index(side)];
  const uint8_t type = static_cast<uint8_t>(plain->back());
  const std::string_view content = std::string_view(*plain).substr(0, plain->size() - 1);
  switch (type) {
    case kApplicationData:
      if (s.phase != Phase::kApplication) {
        Fail(side, record.offset,
             "application data before the handshake finished (0-RTT early data is not "
             "decrypted)");
        return;
      }
      events_->OnTlsPlaintext(side, s.plain_offset, content, record.from);
      s.plain_offset += content.size();
      summary_.plaintext_bytes[Index(side)] += content.size();
      return;
    case kAlert:
      events_->OnTlsControl(side, record.offset, content, record.from);
      return;
    case kHandshake:
      events_->OnTlsControl(side, record.offset, content, record.from);
      HandleDecryptedHandshake(side, content, record);
      return;
    default:
      Fail(side, record.offset, absl::StrCat("a protected record of content type ", type));
  }
}

void Tls13StreamDecryptor::HandleDecryptedHandshake(Side side, std::string_view bytes,
                                                    const Record& record) {
  SideState& s = sides_[Index(side)];
  s.handshake.append(bytes.data(), bytes.size());
  while (s.handshake.size() >= 4) {
    const uint8_t type = static_cast<uint8_t>(s.handshake[0]);
    const size_t length = Be(s.handshake, 1, 3);
    if (length > kMaxHandshakeMessage) {
      Fail(side, record.offset, "a handshake message of more than 1 MiB");
      return;
    }
    if (s.handshake.size() < 4 + length) return;
    s.handshake.erase(0, 4 + length);
    const bool key_change = (s.phase == Phase::kHandshake && type == kFinished) ||
                            (s.phase == Phase::kApplication && type == kKeyUpdate);
    if (!key_change) continue;
    if (!s.handshake.empty()) {
      Fail(side, record.offset, "handshake bytes follow a key change in the same record");
      return;
    }
    if (type == kFinished) {
      if (!UseSecret(side,
                     side == Side::kClient ? "CLIENT_TRAFFIC_SECRET_0" : "SERVER_TRAFFIC_SECRET_0",
                     record.offset)) {
        return;
      }
      s.phase = Phase::kApplication;
    } else {
      s.secret = NextTrafficSecret(*suite_, s.secret);
      s.opener.emplace(*suite_, s.secret);
      ++summary_.key_updates[Index(side)];
    }
  }
}

void Tls13StreamDecryptor::Finish() {
  if (finished_) return;
  finished_ = true;
  for (Side side : {Side::kClient, Side::kServer}) {
    SideState& s = sides_[Index(side)];
    if (s.failed) continue;
    if (!s.queued.empty()) {
      Fail(side, s.queued.front().offset,
           absl::StrCat(s.queued.size(), " protected records of the ", SideName(side),
                        " but no ServerHello in the capture: no keys can be chosen"));
    } else if (!s.buffer.empty()) {
      Fail(side, s.buffer_offset,
           absl::StrCat("the ", SideName(side), "'s last TLS record is cut off (", s.buffer.size(),
                        " bytes captured)"));
    }
  }
}

}  // namespace fedface::partner::audit
