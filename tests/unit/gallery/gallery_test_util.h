// Helpers shared by the gallery tests: deterministic outcomes and direct SQL on a store file.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/common/sha256.h"
#include "partner_node/gallery/gallery_store.h"

namespace fedface::partner::testutil {

// A deterministic embedding that differs for every (seed, face).
inline Embedding MakeEmbedding(int64_t seed, int face = 0) {
  Embedding e;
  for (int d = 0; d < kEmbeddingDim; ++d) {
    e[d] = static_cast<float>(std::sin(seed * 0.7310 + face * 1.37 + d * 0.113));
  }
  return e;
}

inline ImageOutcome Enrolled(const std::string& subject, const std::string& path,
                             const std::string& content, const std::string& model, int faces = 1,
                             int64_t seed = 0) {
  ImageOutcome o;
  o.subject = subject;
  o.relative_path = path;
  o.content_sha256 = Sha256Hex(content);
  o.model_version = model;
  for (int f = 0; f < faces; ++f) o.faces.push_back(MakeEmbedding(seed, f));
  return o;
}

inline ImageOutcome Failed(const std::string& subject, const std::string& path,
                           const std::string& content, const std::string& model,
                           const std::string& reason) {
  ImageOutcome o;
  o.subject = subject;
  o.relative_path = path;
  o.content_sha256 = Sha256Hex(content);
  o.model_version = model;
  o.failure_reason = reason;
  return o;
}

// The first column of the first row of `sql` on the file, through a separate connection.
inline int64_t QueryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  int64_t value = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = sqlite3_column_int64(stmt, 0);
  } else {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

inline std::string QueryText(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    value = p ? p : "";
  } else {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

}  // namespace fedface::partner::testutil
