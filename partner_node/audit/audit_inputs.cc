#include "partner_node/audit/audit_inputs.h"

#include <sqlite3.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"
#include "partner_node/egress/egress_ledger.h"

namespace fedface::partner::audit {
namespace {

constexpr uint64_t kMaxInputBytes = uint64_t{4} << 30;

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::StatusOr<LoadedLedger> LoadEgressLedger(const std::string& path, int64_t from_seq) {
  ASSIGN_OR_RETURN(std::unique_ptr<EgressLedger> ledger,
                   EgressLedger::Open(path, EgressLedger::OpenMode::kMustExist));
  ASSIGN_OR_RETURN(std::vector<LedgerEntry> entries, ledger->Entries());
  LoadedLedger out;
  out.format = "egress-ledger";
  const LedgerVerification verification = VerifyChain(entries);
  out.chain_verified = true;
  out.chain_ok = verification.ok;
  if (!verification.ok) {
    out.chain_problem =
        absl::StrCat("entry seq ", verification.first_bad_seq, ": ", verification.reason);
  }
  for (const LedgerEntry& e : entries) {
    if (e.seq < from_seq) continue;
    out.records.push_back({e.seq, e.message_type, e.size_bytes, e.message_sha256});
  }
  return out;
}

absl::StatusOr<LoadedLedger> LoadJsonLedger(const std::string& path, const std::string& text,
                                            int64_t from_seq) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": neither an egress ledger nor a JSON array of ledger entries"));
  }
  LoadedLedger out;
  out.format = "json";
  int64_t index = 0;
  for (const nlohmann::json& item : doc) {
    ++index;
    auto field = [&](const char* a, const char* b) -> const nlohmann::json* {
      if (!item.is_object()) return nullptr;
      if (item.contains(a)) return &item[a];
      if (item.contains(b)) return &item[b];
      return nullptr;
    };
    const nlohmann::json* type = field("type", "message_type");
    const nlohmann::json* size = field("size", "size_bytes");
    const nlohmann::json* sha = field("sha256", "message_sha256");
    const nlohmann::json* seq = field("seq", "seq");
    if (!type || !type->is_string() || !size || !size->is_number_integer() || !sha ||
        !sha->is_string() || (seq && !seq->is_number_integer())) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": entry ", index, " needs string \"type\", integer \"size\", string \"sha256\""));
    }
    LedgerRecord r;
    r.seq = seq ? seq->get<int64_t>() : index;
    r.message_type = type->get<std::string>();
    r.size_bytes = size->get<int64_t>();
    r.sha256 = absl::AsciiStrToLower(sha->get<std::string>());
    if (r.sha256.size() != 64 || !IsLowerHex(r.sha256)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": entry ", index, ": sha256 is not 64 hex digits"));
    }
    if (r.seq >= from_seq) out.records.push_back(std::move(r));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> LoadCanaries(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxInputBytes));
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) tokens.emplace_back(line);
  }
  if (tokens.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no canary token"));
  return tokens;
}

absl::StatusOr<std::vector<StoredBytes>> LoadStoredEmbeddings(const GalleryStore& store) {
  std::vector<StoredBytes> out;
  RETURN_IF_ERROR(store.ForEachStoredEmbedding([&out](const StoredEmbedding& e) {
    out.push_back({absl::StrCat("embedding ", e.id),
                   std::string(reinterpret_cast<const char*>(e.embedding.data()),
                               sizeof(float) * e.embedding.size())});
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::vector<StoredBytes>> LoadImageDigests(const GalleryStore& store) {
  ASSIGN_OR_RETURN(std::vector<ImageRecord> images, store.Images());
  std::vector<StoredBytes> out;
  for (const ImageRecord& r : images) {
    out.push_back({absl::StrCat("image ", r.id, " sha256"), r.content_sha256});
  }
  return out;
}

absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesFromSqlite(const std::string& path,
                                                                   const std::string& query) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::NotFoundError(absl::StrCat(path, ": cannot open SQLite database: ", why));
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> closer(db, sqlite3_close);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, query.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": query '", query, "' fails: ", sqlite3_errmsg(db)));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> finalizer(stmt, sqlite3_finalize);
  std::vector<StoredBytes> out;
  for (;;) {
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      return absl::InternalError(
          absl::StrCat(path, ": query '", query, "' fails: ", sqlite3_errmsg(db)));
    }
    const int columns = sqlite3_column_count(stmt);
    const int last = columns - 1;
    const void* data = sqlite3_column_blob(stmt, last);
    const int size = sqlite3_column_bytes(stmt, last);
    StoredBytes s;
    s.bytes.assign(static_cast<const char*>(data ? data : ""), static_cast<size_t>(size));
    if (columns >= 2) {
      const unsigned char* label = sqlite3_column_text(stmt, 0);
      s.label = label ? reinterpret_cast<const char*>(label) : "";
    }
    if (s.label.empty()) s.label = absl::StrCat("row ", out.size() + 1);
    out.push_back(std::move(s));
  }
  return out;
}

absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesHexList(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxInputBytes));
  std::vector<StoredBytes> out;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    std::string hex;
    for (char c : line) {
      if (!absl::ascii_isspace(static_cast<unsigned char>(c))) hex += c;
    }
    if (hex.empty()) continue;
    if (hex.size() % 2 != 0 || !IsLowerHex(absl::AsciiStrToLower(hex))) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": not an even-length hex string"));
    }
    out.push_back({absl::StrCat(path, ":", line_number), absl::HexStringToBytes(hex)});
  }
  return out;
}

absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesRaw(const std::string& path,
                                                            size_t record_bytes) {
  ASSIGN_OR_RETURN(std::string data, ReadFile(path, kMaxInputBytes));
  if (record_bytes == 0 || data.size() % record_bytes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", data.size(), " bytes is not a multiple of ", record_bytes));
  }
  std::vector<StoredBytes> out;
  for (size_t i = 0; i * record_bytes < data.size(); ++i) {
    out.push_back({absl::StrCat(path, "#", i), data.substr(i * record_bytes, record_bytes)});
  }
  return out;
}

absl::StatusOr<LoadedLedger> LoadLedger(const std::string& path, int64_t from_seq) {
  static constexpr std::string_view kSqliteMagic("SQLite format 3\0", 16);
  std::string head(kSqliteMagic.size(), '\0');
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open ledger"));
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  if (in.gcount() == static_cast<std::streamsize>(head.size()) && head == kSqliteMagic) {
    return LoadEgressLedger(path, from_seq);
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxInputBytes));
  return LoadJsonLedger(path, text, from_seq);
}

}  // namespace fedface::partner::audit
