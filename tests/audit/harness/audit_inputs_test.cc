// Loading what the audit compares captures with: canary lists, stored bytes in their three
// forms, and JSON ledgers; every bad input is an error naming the file.
#include "partner_node/audit/audit_inputs.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/test_env.h"

namespace fedface::partner::audit {
namespace {

std::string Write(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

class AuditInputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fedface::testing::MakeTempDir("audit-inputs");
    ASSERT_FALSE(dir_.empty());
  }
  std::string dir_;
};

TEST_F(AuditInputsTest, CanaryListDropsCarriageReturnsAndBlankLines) {
  auto tokens = LoadCanaries(Write(dir_, "c.txt", "CANARY-one1\r\n\nCANARY-two2\n"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(*tokens, (std::vector<std::string>{"CANARY-one1", "CANARY-two2"}));
  EXPECT_FALSE(LoadCanaries(Write(dir_, "empty.txt", "\n\n")).ok());
  EXPECT_FALSE(LoadCanaries(dir_ + "/absent.txt").ok());
}

TEST_F(AuditInputsTest, StoredBytesFromHexAndRawFiles) {
  auto hex = LoadStoredBytesHexList(Write(dir_, "e.hex", "00ff10 20\nABCD\n\n"));
  ASSERT_TRUE(hex.ok()) << hex.status();
  ASSERT_EQ(hex->size(), 2u);
  EXPECT_EQ((*hex)[0].bytes, std::string("\x00\xff\x10\x20", 4));
  EXPECT_EQ((*hex)[1].bytes, "\xab\xcd");
  EXPECT_NE((*hex)[1].label.find("e.hex:2"), std::string::npos);
  auto bad = LoadStoredBytesHexList(Write(dir_, "bad.hex", "abc\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.hex:1"), std::string::npos);

  auto raw = LoadStoredBytesRaw(Write(dir_, "e.f32", std::string(1024, 'x')), 512);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->size(), 2u);
  EXPECT_FALSE(LoadStoredBytesRaw(Write(dir_, "odd.f32", std::string(513, 'x')), 512).ok());
}

TEST_F(AuditInputsTest, JsonLedgerAcceptsBothSpellingsAndRejectsBadDigests) {
  const std::string sha(64, 'a');
  auto ledger = LoadLedger(Write(dir_, "l.json",
                                 "[{\"type\":\"fedface.v1.A\",\"size\":3,\"sha256\":\"" + sha +
                                     "\"},{\"seq\":9,\"message_type\":\"fedface.v1.B\","
                                     "\"size_bytes\":4,\"message_sha256\":\"" +
                                     sha + "\"}]"));
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  EXPECT_EQ(ledger->format, "json");
  ASSERT_EQ(ledger->records.size(), 2u);
  EXPECT_EQ(ledger->records[1].seq, 9);
  EXPECT_EQ(ledger->records[1].message_type, "fedface.v1.B");
  auto from = LoadLedger(dir_ + "/l.json", 5);
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->records.size(), 1u);

  auto bad = LoadLedger(Write(dir_, "bad.json", "[{\"type\":\"X\",\"size\":1,\"sha256\":\"ab\"}]"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos);
  EXPECT_FALSE(LoadLedger(Write(dir_, "text.json", "not json")).ok());
}

TEST_F(AuditInputsTest, SqliteQueryErrorsNameTheFile) {
  auto missing = LoadStoredBytesFromSqlite(dir_ + "/absent.db", "SELECT 1");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("absent.db"), std::string::npos);
}

}  // namespace
}  // namespace fedface::partner::audit
