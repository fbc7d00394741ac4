// What the traffic audit compares a capture with: canary tokens, the bytes the gallery stores
// (embeddings), and the partner's egress ledger. Loaders only read; every error names the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner::audit {

using partner::GalleryStore;

// One token per line; a trailing '\r' is dropped and empty lines are skipped. Fails when the
// file cannot be read or holds no token.
absl::StatusOr<std::vector<std::string>> LoadCanaries(const std::string& path);

struct StoredBytes {
  std::string label;  // how findings name it, e.g. "embedding 42" (never a subject name)
  std::string bytes;
};

// Every embedding of every model version the gallery store holds (128 float32 in host order,
// whatever the store keeps them as), labelled "embedding <id>", read through the GalleryStore
// interface (SQLite or PostgreSQL alike).
absl::StatusOr<std::vector<StoredBytes>> LoadStoredEmbeddings(const GalleryStore& store);

// The content digest (64 lower-case hex) of every image the store holds, labelled
// "image <id> sha256".
absl::StatusOr<std::vector<StoredBytes>> LoadImageDigests(const GalleryStore& store);

// Runs `query` on an SQLite file that is NOT a gallery store (those are read through the store
// above), opened read-only. Each row's LAST column is the bytes (a BLOB; TEXT is taken as its
// bytes); with two or more columns the FIRST is the label, else the label is "row N". Fails
// naming the file on a missing file or an SQL error.
absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesFromSqlite(const std::string& path,
                                                                   const std::string& query);

// One hex string per line (whitespace ignored), labelled "<file>:<line>".
absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesHexList(const std::string& path);

// The file cut into consecutive records of record_bytes (e.g. 512 = 128 float32), labelled
// "<file>#<index>". Fails when the size is not a multiple of record_bytes.
absl::StatusOr<std::vector<StoredBytes>> LoadStoredBytesRaw(const std::string& path,
                                                            size_t record_bytes);

struct LedgerRecord {
  int64_t seq = 0;
  std::string message_type;  // full protobuf name
  int64_t size_bytes = 0;
  std::string sha256;  // lower-case hex of the exact serialized bytes
};

struct LoadedLedger {
  std::vector<LedgerRecord> records;  // in ledger order
  std::string format;                 // "egress-ledger" or "json"
  // The hash chain (egress-ledger only): verified, and the first problem when it is broken.
  bool chain_verified = false;
  bool chain_ok = true;
  std::string chain_problem;
};

// Reads a ledger: the partner's SQLite egress ledger (partner_node/egress/egress_ledger.h,
// chain verified too) or a JSON array of {"type", "size", "sha256"} objects (also accepted:
// "message_type", "size_bytes", "message_sha256", and an optional "seq"). Only entries with
// seq >= from_seq are kept.
absl::StatusOr<LoadedLedger> LoadLedger(const std::string& path, int64_t from_seq = 1);

}  // namespace fedface::partner::audit
