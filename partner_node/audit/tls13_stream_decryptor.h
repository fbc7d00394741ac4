// Decrypting one TLS 1.3 connection of a capture with the session secrets of a key log, so that
// the traffic audit checks the plaintext of production (mutual TLS) traffic like a plaintext
// capture.
//
// Input: the two reassembled TCP byte streams of the connection, in capture order. Per side:
// records are parsed (RFC 8446 section 5); the ClientHello gives the client random (the key
// log's index), the ServerHello the cipher suite and version (TLS 1.3 only: a TLS 1.2 session
// is a failure, not a pass); protected records are opened with the handshake traffic secret
// until the side's Finished, then with the application traffic secret, following KeyUpdate
// messages (RFC 8446 section 4.6.3). HelloRetryRequest and middlebox-compatibility
// ChangeCipherSpec records are understood. 0-RTT early data is not decrypted (gRPC does not
// send it); it fails.
//
// Output: the application data of each side as one in-order stream (OnTlsPlaintext), every
// other content the side sent in clear or decrypted (handshake messages, alerts) for the leak
// scan (OnTlsControl), and one failure per side that cannot be decrypted to its end: no secrets
// in the key log, a record that does not authenticate, missing bytes, a cut-off record, an
// unknown cipher suite or version. After a failure nothing more of that side is decrypted.
//
// Thread safety: not thread-safe; one per connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "partner_node/audit/captured_packet.h"
#include "partner_node/audit/grpc_wire_decoder.h"
#include "partner_node/audit/tls13_key_schedule.h"
#include "partner_node/audit/tls_key_log.h"

namespace fedface::partner::audit {

class TlsDecryptEvents {
 public:
  virtual ~TlsDecryptEvents() = default;
  // Application data of `side` at `offset` in that side's decrypted stream; `from` is the frame
  // that completed the record.
  virtual void OnTlsPlaintext(Side side, uint64_t offset, std::string_view bytes,
                              const PacketPosition& from) = 0;
  // Other content `side` sent (handshake messages, alerts), at `tcp_offset` (its record).
  virtual void OnTlsControl(Side side, uint64_t tcp_offset, std::string_view bytes,
                            const PacketPosition& from) = 0;
  // `side` cannot be decrypted from `tcp_offset` on. At most once per side.
  virtual void OnTlsFailure(Side side, uint64_t tcp_offset, const std::string& why) = 0;
};

struct TlsSessionSummary {
  std::string cipher_suite;  // "" until the ServerHello was read
  bool hello_retry = false;
  uint64_t records[2] = {0, 0};          // protected records opened, per side
  uint64_t plaintext_bytes[2] = {0, 0};  // application data decrypted, per side
  uint64_t key_updates[2] = {0, 0};
  bool failed[2] = {false, false};
};

class Tls13StreamDecryptor {
 public:
  // Records buffered per side while waiting for the other side's hello (bytes).
  static constexpr size_t kMaxQueuedBytes = size_t{16} << 20;

  // `keys` may be null (no key log given): every protected record then fails. Both must outlive
  // the decryptor.
  Tls13StreamDecryptor(const TlsKeyLog* keys, TlsDecryptEvents* events);

  void Feed(Side side, uint64_t offset, std::string_view bytes, const PacketPosition& from);
  // Bytes of `side` from `offset` were not captured (length kUnknownLength: its start).
  void OnGap(Side side, uint64_t offset, uint64_t length);
  // End of the capture: reports what could not be decrypted. Idempotent.
  void Finish();

  const TlsSessionSummary& summary() const { return summary_; }

 private:
  enum class Phase { kClear, kHandshake, kApplication };
  struct Record {
    uint8_t type = 0;
    std::string header;
    std::string body;
    uint64_t offset = 0;
    PacketPosition from;
  };
  struct SideState {
    Phase phase = Phase::kClear;
    bool failed = false;
    std::string buffer;  // bytes of an incomplete record
    uint64_t buffer_offset = 0;
    bool buffer_started = false;
    std::string handshake;  // handshake message bytes not yet complete
    std::optional<Tls13RecordOpener> opener;
    std::string secret;
    std::vector<Record> queued;  // protected records waiting for the keys
    size_t queued_bytes = 0;
    uint64_t plain_offset = 0;
  };

  void Fail(Side side, uint64_t offset, std::string why);
  void HandleRecord(Side side, Record record);
  void HandleClearHandshake(Side side, const Record& record);
  bool ParseHello(Side side, std::string_view message, uint64_t offset);
  void HandleProtected(Side side, const Record& record);
  void HandleDecryptedHandshake(Side side, std::string_view bytes, const Record& record);
  // Sets up the side's handshake keys when both hellos were read; then drains its queue.
  void TryStartProtection(Side side);
  bool UseSecret(Side side, const char* label, uint64_t offset);

  const TlsKeyLog* const keys_;
  TlsDecryptEvents* const events_;
  SideState sides_[2];
  std::optional<std::string> client_random_;
  std::optional<Tls13CipherSuite> suite_;
  TlsSessionSummary summary_;
  bool finished_ = false;
};

}  // namespace fedface::partner::audit
