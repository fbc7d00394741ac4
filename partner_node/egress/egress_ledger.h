// The egress ledger: a hash-chained, append-only record of every message the partner sends to a
// vendor, kept in the partner's own SQLite file (WAL, synchronous=FULL).
//
// What an entry holds (and nothing else):
//   seq           1, 2, 3, ... with no gaps
//   time_utc      "YYYY-MM-DDTHH:MM:SS.ffffffZ" when the entry was appended
//   vendor        the vendor's identity (e.g. its certificate subject), as the guard gives it
//   summary       a short request summary the egress guard builds from NON-partner data only
//                 (request id, protocol, model version); never names, paths or per-item values
//   message_type  the full protobuf name of the message, e.g. "fedface.v1.EvaluationRelease"
//   size_bytes    length of the exact serialized bytes sent
//   message_sha256  lower-case hex sha256 of those exact bytes
//   prev_hash     entry_hash of entry seq-1; 64 '0' characters for the genesis entry (seq 1)
//   entry_hash    sha256 hex over CanonicalEncoding(all the fields above, including prev_hash)
//
// The ledger NEVER stores the message bytes, only their size and digest: it holds nothing that the
// vendor does not already receive. Anyone holding a copy of a sent message can prove it is the one
// recorded by hashing it and comparing with message_sha256.
//
// Tamper evidence: Verify() walks the chain from seq 1 and names the FIRST bad entry. An edited
// field breaks that entry's entry_hash; a deleted entry shows as a seq gap (or, if later entries
// were renumbered, as broken hashes); reordered entries break entry_hash (seq is hashed) or
// prev_hash. Limits, by construction: deleting entries from the END, or rewriting the chain and
// recomputing every hash from some point on, is only detectable against a head recorded
// elsewhere: every release carries the head it extends, the vendor keeps those anchors, and
// ledger_anchors.h checks the ledger against them (`partner_node ledger verify --anchors FILE`).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config/config_schema.h"

struct sqlite3;

namespace fedface::partner {

// prev_hash of the genesis entry.
inline constexpr std::string_view kLedgerGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// ledger.*: where the partner keeps its ledger. Part of the partner_node configuration file.
inline constexpr char kLedgerPathConfigKey[] = "ledger.path";
std::vector<ConfigKey> EgressLedgerConfigKeys();

// Longest summary Append accepts; the guard keeps summaries short by design.
inline constexpr size_t kMaxLedgerSummaryBytes = 512;

struct LedgerEntry {
  int64_t seq = 0;
  std::string time_utc;
  std::string vendor;
  std::string summary;
  std::string message_type;
  int64_t size_bytes = 0;
  std::string message_sha256;
  std::string prev_hash;
  std::string entry_hash;
};

// The canonical byte encoding hashed into entry_hash: a fixed domain tag, then every field except
// entry_hash as "<decimal length>:<bytes>," in the order of LedgerEntry (integers in decimal).
// Length prefixes make the encoding injective, so no two different entries share it.
std::string CanonicalEncoding(const LedgerEntry& entry);

// sha256 hex of CanonicalEncoding(entry).
std::string ComputeEntryHash(const LedgerEntry& entry);

// The last entry: its seq and entry_hash (0 and kLedgerGenesisHash for an empty ledger).
struct LedgerHeadPosition {
  int64_t seq = 0;
  std::string entry_hash;
};

// Result of walking the chain. ok == true: every entry checks out. Otherwise first_bad_seq is the
// seq of the first entry (in chain order) that does not, and reason says why in one line.
struct LedgerVerification {
  bool ok = true;
  int64_t entry_count = 0;  // rows present in the ledger
  std::string head_hash;    // entry_hash of the last row (kLedgerGenesisHash when empty)
  int64_t first_bad_seq = 0;
  std::string reason;
};

// The chain check that EgressLedger::Verify runs, over rows already read (ordered by seq).
LedgerVerification VerifyChain(const std::vector<LedgerEntry>& entries);

class EgressLedger {
 public:
  enum class OpenMode {
    kCreateIfMissing,  // the node's egress path: create the file and schema on first use
    kMustExist,        // show / verify: a missing file is NotFound, never silently created
  };

  // Opens (or creates) the ledger at `path`: WAL journal, synchronous=FULL, schema version
  // checked. Fails naming the file when it cannot be opened, is not a ledger, or was written by a
  // newer schema.
  static absl::StatusOr<std::unique_ptr<EgressLedger>> Open(const std::string& path, OpenMode mode);

  ~EgressLedger();
  EgressLedger(const EgressLedger&) = delete;
  EgressLedger& operator=(const EgressLedger&) = delete;

  // Records that `serialized` (the exact bytes about to be sent) goes to `vendor`.
  // REQUIRES: vendor and message_type non-empty; summary at most kMaxLedgerSummaryBytes of
  //           printable ASCII (no control characters), else InvalidArgument and nothing is written.
  // ENSURES:  on OK, the entry is durable (committed with fsync) before this returns; its seq is
  //           head+1 and its prev_hash is the head's entry_hash, also when several threads or
  //           processes append at once (the read of the head and the insert share one IMMEDIATE
  //           transaction). The bytes themselves are not stored.
  // Thread-safe.
  absl::StatusOr<LedgerEntry> Append(std::string_view vendor, std::string_view summary,
                                     std::string_view message_type, std::string_view serialized);

  // The current head (what the next Append will extend, unless another append comes first).
  // Thread-safe.
  absl::StatusOr<LedgerHeadPosition> Head() const;

  // Every row ordered by seq, exactly as stored (no checking; see Verify). Thread-safe.
  absl::StatusOr<std::vector<LedgerEntry>> Entries() const;

  // Walks the chain in seq order and reports the first bad entry, if any:
  //  - a seq that is not the previous seq + 1 (the missing seq is named: an entry was deleted);
  //  - malformed fields (hashes not 64 lower-case hex, negative size, bad time);
  //  - prev_hash different from the previous entry's entry_hash;
  //  - entry_hash different from ComputeEntryHash of the stored fields (an edited field).
  // Returns a non-OK status only when the file cannot be read; a broken chain is an OK status
  // with verification.ok == false. Thread-safe.
  absl::StatusOr<LedgerVerification> Verify() const;

  const std::string& path() const { return path_; }

 private:
  EgressLedger(std::string path, sqlite3* db) : path_(std::move(path)), db_(db) {}

  const std::string path_;
  sqlite3* const db_;
  mutable std::mutex mu_;  // serialises use of db_ within this process
};

}  // namespace fedface::partner
