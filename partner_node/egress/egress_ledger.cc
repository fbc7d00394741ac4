#include "partner_node/egress/egress_ledger.h"

#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"
#include "partner_node/gallery/sqlite_db.h"

namespace fedface::partner {
namespace {

// PRAGMA application_id marks the file as an egress ledger ("FFLG"), so a gallery or any other
// SQLite file is refused instead of being given a ledger table.
constexpr int kLedgerApplicationId = 0x46464C47;
constexpr int kLedgerSchemaVersion = 1;
constexpr char kDomainTag[] = "fedface.egress_ledger.v1\n";

constexpr char kSchema[] = R"sql(
CREATE TABLE ledger_entries (
  seq            INTEGER PRIMARY KEY,
  time_utc       TEXT NOT NULL,
  vendor         TEXT NOT NULL,
  summary        TEXT NOT NULL,
  message_type   TEXT NOT NULL,
  size_bytes     INTEGER NOT NULL,
  message_sha256 TEXT NOT NULL,
  prev_hash      TEXT NOT NULL,
  entry_hash     TEXT NOT NULL
);
)sql";

constexpr char kSelectAll[] =
    "SELECT seq, time_utc, vendor, summary, message_type, size_bytes, message_sha256, prev_hash, "
    "entry_hash, typeof(seq) = 'integer' AND typeof(size_bytes) = 'integer' "
    "FROM ledger_entries ORDER BY seq";

void AppendField(std::string& out, std::string_view value) {
  absl::StrAppend(&out, value.size(), ":", std::string(value), ",");
}

bool IsHexDigest(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool IsMessageTypeName(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// "YYYY-MM-DDTHH:MM:SS.ffffffZ"
bool IsUtcTime(std::string_view s) {
  static constexpr std::string_view kPattern = "dddd-dd-ddTdd:dd:dd.ddddddZ";
  if (s.size() != kPattern.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (kPattern[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != kPattern[i]) return false;
  }
  return true;
}

std::string NowUtc() {
  const auto now = std::chrono::system_clock::now();
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                         static_cast<int>(micros % 1000000));
}

struct Row {
  LedgerEntry entry;
  bool well_typed = true;
};

absl::StatusOr<std::vector<Row>> ReadRows(sqlite3* db) {
  ASSIGN_OR_RETURN(auto stmt, sqlite::Statement::Prepare(db, kSelectAll));
  std::vector<Row> rows;
  while (true) {
    ASSIGN_OR_RETURN(auto has, stmt.Step());
    if (!has) break;
    Row row;
    LedgerEntry& e = row.entry;
    e.seq = stmt.Int(0);
    e.time_utc = stmt.Text(1);
    e.vendor = stmt.Text(2);
    e.summary = stmt.Text(3);
    e.message_type = stmt.Text(4);
    e.size_bytes = stmt.Int(5);
    e.message_sha256 = stmt.Text(6);
    e.prev_hash = stmt.Text(7);
    e.entry_hash = stmt.Text(8);
    row.well_typed = stmt.Int(9) != 0;
    rows.push_back(std::move(row));
  }
  return rows;
}

// The shape checks of one stored entry; "" when fine.
std::string MalformedReason(const LedgerEntry& e) {
  if (!IsUtcTime(e.time_utc)) return "time is not a UTC timestamp";
  if (e.vendor.empty()) return "vendor is empty";
  if (!IsMessageTypeName(e.message_type)) return "message type is not a protobuf name";
  if (e.size_bytes < 0) return "size is negative";
  if (!IsHexDigest(e.message_sha256)) return "message sha256 is not 64 hex digits";
  if (!IsHexDigest(e.prev_hash)) return "prev_hash is not 64 hex digits";
  if (!IsHexDigest(e.entry_hash)) return "entry_hash is not 64 hex digits";
  return "";
}

LedgerVerification VerifyRows(const std::vector<Row>& rows) {
  LedgerVerification v;
  v.entry_count = static_cast<int64_t>(rows.size());
  v.head_hash = rows.empty() ? std::string(kLedgerGenesisHash) : rows.back().entry.entry_hash;
  auto fail = [&v](int64_t seq, std::string reason) {
    v.ok = false;
    v.first_bad_seq = seq;
    v.reason = std::move(reason);
    return v;
  };
  int64_t expected_seq = 1;
  std::string prev_hash(kLedgerGenesisHash);
  for (const Row& row : rows) {
    const LedgerEntry& e = row.entry;
    if (e.seq > expected_seq) {
      return fail(expected_seq,
                  absl::StrCat("entry ", expected_seq, " is missing: the entry after ",
                               expected_seq - 1, " is ", e.seq, " (entries were deleted)"));
    }
    if (e.seq < expected_seq) {
      return fail(
          e.seq, absl::StrCat("entry ", e.seq, ": seq out of order (expected ", expected_seq, ")"));
    }
    if (!row.well_typed) {
      return fail(e.seq, absl::StrCat("entry ", e.seq, ": seq or size is not an integer (edited)"));
    }
    if (std::string why = MalformedReason(e); !why.empty()) {
      return fail(e.seq, absl::StrCat("entry ", e.seq, ": ", why, " (edited)"));
    }
    if (e.prev_hash != prev_hash) {
      return fail(
          e.seq, expected_seq == 1
                     ? absl::StrCat("entry 1: prev_hash is not the genesis hash (edited)")
                     : absl::StrCat("entry ", e.seq, ": prev_hash does not match entry ", e.seq - 1,
                                    "'s entry_hash (entries were edited, removed or reordered)"));
    }
    if (ComputeEntryHash(e) != e.entry_hash) {
      return fail(e.seq, absl::StrCat("entry ", e.seq,
                                      ": entry_hash does not match its contents (a field was "
                                      "edited)"));
    }
    prev_hash = e.entry_hash;
    ++expected_seq;
  }
  return v;
}

}  // namespace

std::vector<ConfigKey> EgressLedgerConfigKeys() {
  return {{.path = kLedgerPathConfigKey,
           .type = ConfigValueType::kPath,
           .default_value = "egress_ledger.db",
           .doc = "SQLite file of the egress ledger: one hash-chained entry per message sent to "
                  "a vendor (its size and sha256, never its bytes). Created on first use; "
                  "`partner_node ledger show|verify` reads it."}};
}

std::string CanonicalEncoding(const LedgerEntry& e) {
  std::string out(kDomainTag);
  AppendField(out, absl::StrCat(e.seq));
  AppendField(out, e.time_utc);
  AppendField(out, e.vendor);
  AppendField(out, e.summary);
  AppendField(out, e.message_type);
  AppendField(out, absl::StrCat(e.size_bytes));
  AppendField(out, e.message_sha256);
  AppendField(out, e.prev_hash);
  return out;
}

std::string ComputeEntryHash(const LedgerEntry& entry) {
  return Sha256Hex(CanonicalEncoding(entry));
}

LedgerVerification VerifyChain(const std::vector<LedgerEntry>& entries) {
  std::vector<Row> rows;
  rows.reserve(entries.size());
  for (const LedgerEntry& e : entries) rows.push_back(Row{e, true});
  return VerifyRows(rows);
}

absl::StatusOr<std::unique_ptr<EgressLedger>> EgressLedger::Open(const std::string& path,
                                                                 OpenMode mode) {
  sqlite::OpenOptions options;
  options.create_if_missing = mode == OpenMode::kCreateIfMissing;
  ASSIGN_OR_RETURN(sqlite3 * db,
                   sqlite::OpenWithSchema(path, options, kLedgerApplicationId, kLedgerSchemaVersion,
                                          kSchema, "an egress ledger"));
  return std::unique_ptr<EgressLedger>(new EgressLedger(path, db));
}

EgressLedger::~EgressLedger() { sqlite::Close(db_); }

absl::StatusOr<LedgerEntry> EgressLedger::Append(std::string_view vendor, std::string_view summary,
                                                 std::string_view message_type,
                                                 std::string_view serialized) {
  if (vendor.empty() || vendor.size() > kMaxLedgerSummaryBytes || !IsPrintableAscii(vendor)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ledger vendor identity must be 1..",
                                                   kMaxLedgerSummaryBytes,
                                                   " printable ASCII characters"));
  }
  if (summary.size() > kMaxLedgerSummaryBytes || !IsPrintableAscii(summary)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ledger summary must be at most ",
                                                   kMaxLedgerSummaryBytes,
                                                   " printable ASCII characters"));
  }
  if (!IsMessageTypeName(message_type)) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": ledger message type '",
                                                   std::string(message_type.substr(0, 80)),
                                                   "' is not a protobuf message name"));
  }

  LedgerEntry e;
  e.vendor = std::string(vendor);
  e.summary = std::string(summary);
  e.message_type = std::string(message_type);
  e.size_bytes = static_cast<int64_t>(serialized.size());
  e.message_sha256 = Sha256Hex(serialized);

  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto tx, sqlite::Transaction::Begin(db_));
  {
    ASSIGN_OR_RETURN(
        auto head,
        sqlite::Statement::Prepare(
            db_, "SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(auto has, head.Step());
    e.seq = has ? head.Int(0) + 1 : 1;
    e.prev_hash = has ? head.Text(1) : std::string(kLedgerGenesisHash);
  }
  e.time_utc = NowUtc();
  e.entry_hash = ComputeEntryHash(e);

  ASSIGN_OR_RETURN(
      auto insert,
      sqlite::Statement::Prepare(
          db_,
          "INSERT INTO ledger_entries (seq, time_utc, vendor, summary, message_type, size_bytes, "
          "message_sha256, prev_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  insert.Bind(1, e.seq)
      .Bind(2, e.time_utc)
      .Bind(3, e.vendor)
      .Bind(4, e.summary)
      .Bind(5, e.message_type)
      .Bind(6, e.size_bytes)
      .Bind(7, e.message_sha256)
      .Bind(8, e.prev_hash)
      .Bind(9, e.entry_hash);
  RETURN_IF_ERROR(insert.Run());
  RETURN_IF_ERROR(tx->Commit());
  return e;
}

absl::StatusOr<LedgerHeadPosition> EgressLedger::Head() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(
      auto head, sqlite::Statement::Prepare(
                     db_, "SELECT seq, entry_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"));
  ASSIGN_OR_RETURN(auto has, head.Step());
  if (!has) return LedgerHeadPosition{0, std::string(kLedgerGenesisHash)};
  return LedgerHeadPosition{head.Int(0), head.Text(1)};
}

absl::StatusOr<std::vector<LedgerEntry>> EgressLedger::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto rows, ReadRows(db_));
  std::vector<LedgerEntry> entries;
  entries.reserve(rows.size());
  for (Row& r : rows) entries.push_back(std::move(r.entry));
  return entries;
}

absl::StatusOr<LedgerVerification> EgressLedger::Verify() const {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(auto rows, ReadRows(db_));
  return VerifyRows(rows);
}

}  // namespace fedface::partner
