// `partner_node ledger show|verify`: exit codes and what a person reads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "partner_node/cli/command.h"
#include "partner_node/egress/egress_ledger.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct CommandResult {
  int code;
  std::string out;
  std::string err;
};

CommandResult RunCommand(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  std::streambuf* old_out = std::cout.rdbuf(out.rdbuf());
  std::streambuf* old_err = std::cerr.rdbuf(err.rdbuf());
  const int code = RunLedger(args);
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  return {code, out.str(), err.str()};
}

class LedgerCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ledger-cmd");
    path_ = dir_ + "/egress_ledger.db";
    auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kCreateIfMissing);
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    for (int i = 1; i <= 3; ++i) {
      auto e = (*ledger)->Append("CN=vendor-a", "round " + std::to_string(i) + " verification",
                                 "fedface.v1.EvaluationRelease", std::string(100 * i, 'r'));
      ASSERT_TRUE(e.ok()) << e.status();
      entries_.push_back(*e);
    }
  }

  std::string dir_;
  std::string path_;
  std::vector<LedgerEntry> entries_;
};

TEST_F(LedgerCommandTest, VerifyPrintsCountAndHeadOnAnIntactLedger) {
  const CommandResult r = RunCommand({"verify", "--ledger", path_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ledger OK: 3 entries, head " + entries_.back().entry_hash + "\n");
}

TEST_F(LedgerCommandTest, VerifyFailsNamingTheFirstBadEntry) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE ledger_entries SET vendor = 'CN=other' WHERE seq = 2", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const CommandResult r = RunCommand({"verify", "--ledger", path_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("first bad entry 2"));
  EXPECT_THAT(r.out, Not(HasSubstr("ledger OK")));
}

// The anchors a vendor holds: entry k's message extended entry k-1 (as a release carries it).
std::string AnchorsOf(const std::vector<LedgerEntry>& entries) {
  std::string text = "# anchors\n";
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string head = i == 0 ? std::string(kLedgerGenesisHash) : entries[i - 1].entry_hash;
    text += std::to_string(i) + " " + head + " " + entries[i].message_sha256 + " round-" +
            std::to_string(i + 1) + "\n";
  }
  return text;
}

TEST_F(LedgerCommandTest, VerifyWithAnchorsDetectsEntriesRemovedFromTheEnd) {
  const std::string anchors = dir_ + "/anchors.txt";
  std::ofstream(anchors) << AnchorsOf(entries_);
  CommandResult r = RunCommand({"verify", "--ledger", path_, "--anchors", anchors});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("ledger anchors OK: 3 anchor(s)"));

  // Cut the last entry off: the chain that remains is whole, only the anchors can tell.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM ledger_entries WHERE seq = 3", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  r = RunCommand({"verify", "--ledger", path_});
  EXPECT_EQ(r.code, 0) << "without anchors a cut end is invisible: " << r.out;
  r = RunCommand({"verify", "--ledger", path_, "--anchors", anchors});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("ledger BROKEN: anchor round-3"));
  EXPECT_THAT(r.out, HasSubstr("its entry was removed"));
}

TEST_F(LedgerCommandTest, VerifyRefusesAMalformedAnchorsFileNamingTheLine) {
  const std::string anchors = dir_ + "/anchors.txt";
  std::ofstream(anchors) << "# fine\n0 not-a-hash " << entries_[0].message_sha256 << "\n";
  const CommandResult r = RunCommand({"verify", "--ledger", path_, "--anchors", anchors});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("anchors line 2"));
}

TEST_F(LedgerCommandTest, ShowPrintsOneRowPerEntryWithDigestPrefixes) {
  const CommandResult r = RunCommand({"show", "--ledger", path_});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("seq"));
  EXPECT_THAT(r.out, HasSubstr("summary"));
  for (const LedgerEntry& e : entries_) {
    EXPECT_THAT(r.out, HasSubstr(e.message_sha256.substr(0, 12)));
    EXPECT_THAT(r.out, Not(HasSubstr(e.message_sha256))) << "whole digest without --full";
    EXPECT_THAT(r.out, HasSubstr(e.summary));
    EXPECT_THAT(r.out, HasSubstr(e.time_utc));
  }
  EXPECT_THAT(r.out, HasSubstr("ledger OK: 3 entries"));
  const CommandResult full = RunCommand({"show", "--full", "--ledger", path_});
  EXPECT_THAT(full.out, HasSubstr(entries_[0].message_sha256));
}

TEST_F(LedgerCommandTest, ConfigNamesTheLedgerFile) {
  for (const char* file : {"ca.crt", "partner.crt", "partner.key", "vendor_signing.pub"}) {
    std::ofstream(dir_ + "/" + file) << "placeholder\n";
  }
  const std::string config = dir_ + "/partner.yaml";
  std::ofstream(config) << "vendor:\n"
                           "  address: 127.0.0.1:7443\n"
                           "  ca_cert: ca.crt\n"
                           "  client_cert: partner.crt\n"
                           "  client_key: partner.key\n"
                           "  signing_key: vendor_signing.pub\n"
                           "model_cache:\n"
                           "  dir: models\n"
                           "ledger:\n"
                           "  path: egress_ledger.db\n";
  const CommandResult r = RunCommand({"verify", "--config", config});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "ledger OK: 3 entries, head " + entries_.back().entry_hash + "\n");

  std::ofstream(config, std::ios::app) << "  pth: typo.db\n";
  const CommandResult bad = RunCommand({"verify", "--config", config});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("ledger.pth"));
}

TEST_F(LedgerCommandTest, MissingLedgerFailsWithoutCreatingIt) {
  const std::string missing = dir_ + "/nope.db";
  const CommandResult r = RunCommand({"verify", "--ledger", missing});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(missing));
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(LedgerCommandTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand({"verify"}).code, 2);
  EXPECT_EQ(RunCommand({"verify", "--ledger", path_, "--config", "x.yaml"}).code, 2);
  EXPECT_EQ(RunCommand({"audit", "--ledger", path_}).code, 2);
  EXPECT_EQ(RunCommand({"verify", "--ledger", path_, "--bogus"}).code, 2);
  EXPECT_EQ(RunCommand({"--help"}).code, 0);
}

}  // namespace
}  // namespace fedface::partner
