#include "partner_node/egress/egress_ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/common/sha256.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;

constexpr char kType[] = "fedface.v1.EvaluationRelease";

// Runs SQL on the ledger file through a separate connection, as a tamperer would.
void Tamper(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << message;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class EgressLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ledger");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/egress_ledger.db";
  }

  std::unique_ptr<EgressLedger> OpenLedger(
      EgressLedger::OpenMode mode = EgressLedger::OpenMode::kCreateIfMissing) {
    auto ledger = EgressLedger::Open(path_, mode);
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    return ledger.ok() ? std::move(*ledger) : nullptr;
  }

  // Appends n entries whose messages are "message <seq>".
  void AppendEntries(int n) {
    auto ledger = OpenLedger();
    ASSERT_NE(ledger, nullptr);
    for (int i = 0; i < n; ++i) {
      auto e = ledger->Append("CN=vendor-a", "round 7 verification model 1.2.0", kType,
                              "message " + std::to_string(i + 1));
      ASSERT_TRUE(e.ok()) << e.status();
    }
  }

  LedgerVerification VerifyFile() {
    auto ledger = OpenLedger(EgressLedger::OpenMode::kMustExist);
    if (!ledger) return {};
    auto v = ledger->Verify();
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : LedgerVerification{};
  }

  std::string dir_;
  std::string path_;
};

TEST_F(EgressLedgerTest, ChainsEntriesFromTheGenesisHash) {
  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  const std::string first_bytes = "first release bytes";
  auto first = ledger->Append("CN=vendor-a", "round 1", kType, first_bytes);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ledger->Append("CN=vendor-a", "round 2", kType, std::string(1000, 'x'));
  ASSERT_TRUE(second.ok()) << second.status();

  EXPECT_EQ(first->seq, 1);
  EXPECT_EQ(first->prev_hash, kLedgerGenesisHash);
  EXPECT_EQ(first->size_bytes, static_cast<int64_t>(first_bytes.size()));
  EXPECT_EQ(first->message_sha256, Sha256Hex(first_bytes));
  EXPECT_EQ(first->entry_hash, ComputeEntryHash(*first));
  EXPECT_THAT(
      first->time_utc,
      ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z"));
  EXPECT_EQ(second->seq, 2);
  EXPECT_EQ(second->prev_hash, first->entry_hash);
  EXPECT_EQ(second->size_bytes, 1000);

  auto entries = ledger->Entries();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].entry_hash, first->entry_hash);
  EXPECT_EQ((*entries)[1].summary, "round 2");
  auto v = ledger->Verify();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->entry_count, 2);
  EXPECT_EQ(v->head_hash, second->entry_hash);
}

TEST_F(EgressLedgerTest, EntryHashCoversEveryField) {
  LedgerEntry e{3,
                "2025-01-02T03:04:05.000006Z",
                "CN=v",
                "s",
                kType,
                10,
                std::string(64, 'a'),
                std::string(64, 'b'),
                ""};
  const std::string base = ComputeEntryHash(e);
  auto changed = [&](auto mutate) {
    LedgerEntry copy = e;
    mutate(copy);
    return ComputeEntryHash(copy) != base;
  };
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.seq = 4; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.time_utc[5] = '1'; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.vendor = "CN=w"; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.summary = "t"; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.message_type = "fedface.v1.Other"; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.size_bytes = 11; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.message_sha256[0] = 'c'; }));
  EXPECT_TRUE(changed([](LedgerEntry& x) { x.prev_hash[0] = 'c'; }));
  // Length prefixes: moving a character from one field to the next changes the hash.
  EXPECT_TRUE(changed([](LedgerEntry& x) {
    x.vendor = "CN=vs";
    x.summary = "";
  }));
}

TEST_F(EgressLedgerTest, NeverStoresTheMessageBytes) {
  // A canary that would be found verbatim in the file (or its WAL) if the bytes were stored.
  std::mt19937_64 rng(20240607);
  std::string canary(48, '\0');
  for (char& c : canary) c = static_cast<char>('A' + rng() % 26);
  {
    auto ledger = OpenLedger();
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(ledger->Append("CN=vendor-a", "round 1", kType, canary).ok());
  }
  std::string stored;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    if (std::filesystem::exists(path_ + suffix)) stored += ReadAll(path_ + suffix);
  }
  ASSERT_FALSE(stored.empty());
  EXPECT_EQ(stored.find(canary), std::string::npos);
  EXPECT_EQ(stored.find(canary.substr(0, 16)), std::string::npos);
  EXPECT_NE(stored.find(Sha256Hex(canary)), std::string::npos);
}

TEST_F(EgressLedgerTest, SurvivesReopenAndContinuesTheChain) {
  AppendEntries(3);
  AppendEntries(2);  // a new EgressLedger on the same file, as after a restart
  auto ledger = OpenLedger(EgressLedger::OpenMode::kMustExist);
  ASSERT_NE(ledger, nullptr);
  auto entries = ledger->Entries();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ((*entries)[i].seq, i + 1);
  EXPECT_EQ((*entries)[3].prev_hash, (*entries)[2].entry_hash);
  const LedgerVerification v = VerifyFile();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entry_count, 5);
}

TEST_F(EgressLedgerTest, EmptyLedgerVerifiesWithGenesisHead) {
  ASSERT_NE(OpenLedger(), nullptr);
  const LedgerVerification v = VerifyFile();
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.entry_count, 0);
  EXPECT_EQ(v.head_hash, kLedgerGenesisHash);
}

TEST_F(EgressLedgerTest, NamesAnEditedFieldAsTheFirstBadEntry) {
  AppendEntries(6);
  Tamper(path_, "UPDATE ledger_entries SET size_bytes = size_bytes + 1 WHERE seq = 4");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_THAT(v.reason, HasSubstr("entry 4"));
  EXPECT_THAT(v.reason, HasSubstr("edited"));
}

TEST_F(EgressLedgerTest, NamesEachKindOfEditedField) {
  AppendEntries(3);
  const std::vector<std::string> edits = {
      "summary = 'round 8 verification model 1.2.0'", "vendor = 'CN=vendor-b'",
      "message_type = 'fedface.v1.Other'", "time_utc = '2020-01-01T00:00:00.000000Z'",
      "message_sha256 = '" + std::string(64, '0') + "'"};
  const std::string copy = dir_ + "/pristine.db";
  Tamper(path_, "PRAGMA wal_checkpoint(TRUNCATE)");
  std::filesystem::copy_file(path_, copy);
  for (const std::string& edit : edits) {
    std::filesystem::copy_file(copy, path_, std::filesystem::copy_options::overwrite_existing);
    Tamper(path_, "UPDATE ledger_entries SET " + edit + " WHERE seq = 2");
    const LedgerVerification v = VerifyFile();
    EXPECT_FALSE(v.ok) << edit;
    EXPECT_EQ(v.first_bad_seq, 2) << edit << ": " << v.reason;
  }
}

TEST_F(EgressLedgerTest, NamesTheEntryAfterAnEditWhoseHashWasRecomputed) {
  AppendEntries(5);
  // A careful tamperer edits entry 3 and recomputes its own hash: entry 4 no longer chains.
  std::vector<LedgerEntry> entries;
  {
    auto ledger = OpenLedger();
    entries = *ledger->Entries();
  }
  LedgerEntry forged = entries[2];
  forged.summary = "nothing to see";
  forged.entry_hash = ComputeEntryHash(forged);
  Tamper(path_, "UPDATE ledger_entries SET summary = 'nothing to see', entry_hash = '" +
                    forged.entry_hash + "' WHERE seq = 3");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
  EXPECT_THAT(v.reason, HasSubstr("prev_hash"));
}

TEST_F(EgressLedgerTest, NamesADeletedEntry) {
  AppendEntries(6);
  Tamper(path_, "DELETE FROM ledger_entries WHERE seq = 3");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_THAT(v.reason, HasSubstr("missing"));
  EXPECT_EQ(v.entry_count, 5);
}

TEST_F(EgressLedgerTest, NamesADeletedFirstEntry) {
  AppendEntries(3);
  Tamper(path_, "DELETE FROM ledger_entries WHERE seq = 1");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 1);
}

TEST_F(EgressLedgerTest, NamesADeletionHiddenByRenumbering) {
  AppendEntries(6);
  Tamper(path_,
         "DELETE FROM ledger_entries WHERE seq = 3; "
         "UPDATE ledger_entries SET seq = -seq WHERE seq > 3; "
         "UPDATE ledger_entries SET seq = -seq - 1 WHERE seq < 0;");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_EQ(v.entry_count, 5);
}

TEST_F(EgressLedgerTest, NamesTheFirstOfTwoSwappedEntries) {
  AppendEntries(6);
  Tamper(path_,
         "UPDATE ledger_entries SET seq = -1 WHERE seq = 2; "
         "UPDATE ledger_entries SET seq = 2 WHERE seq = 5; "
         "UPDATE ledger_entries SET seq = 5 WHERE seq = -1;");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
  EXPECT_THAT(v.reason, HasSubstr("entry 2"));
}

TEST_F(EgressLedgerTest, NamesSwappedNeighbours) {
  AppendEntries(4);
  Tamper(path_,
         "UPDATE ledger_entries SET seq = -1 WHERE seq = 3; "
         "UPDATE ledger_entries SET seq = 3 WHERE seq = 4; "
         "UPDATE ledger_entries SET seq = 4 WHERE seq = -1;");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
}

TEST_F(EgressLedgerTest, NamesAValueOfTheWrongType) {
  AppendEntries(3);
  Tamper(path_,
         "UPDATE ledger_entries SET size_bytes = CAST(size_bytes AS TEXT) || 'x' "
         "WHERE seq = 2");
  const LedgerVerification v = VerifyFile();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
}

TEST_F(EgressLedgerTest, RefusesMalformedAppendsAndWritesNothing) {
  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  EXPECT_EQ(ledger->Append("", "s", kType, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->Append("CN=v", "line\nbreak", kType, "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->Append("CN=v", std::string(kMaxLedgerSummaryBytes + 1, 's'), kType, "m")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->Append("CN=v", "s", "not a type!", "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger->Append("CN=v", "s", "", "m").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto entries = ledger->Entries();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
}

TEST_F(EgressLedgerTest, ConcurrentAppendersFromTwoConnectionsKeepOneChain) {
  auto a = OpenLedger();
  auto b = OpenLedger();  // a second connection, as a second process would have
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      EgressLedger* ledger = t % 2 ? a.get() : b.get();
      for (int i = 0; i < 20; ++i) {
        auto e = ledger->Append("CN=vendor-" + std::to_string(t), "concurrent", kType,
                                std::to_string(t * 1000 + i));
        EXPECT_TRUE(e.ok()) << e.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto v = a->Verify();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->entry_count, 80);
}

TEST_F(EgressLedgerTest, MustExistModeDoesNotCreateAFile) {
  auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kMustExist);
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr(path_));
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(EgressLedgerTest, AnEmptyFileLeftByAKilledStartBecomesALedgerOnlyWhenCreating) {
  std::ofstream(path_).close();  // what a node killed before its first commit leaves behind
  EXPECT_EQ(EgressLedger::Open(path_, EgressLedger::OpenMode::kMustExist).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto ledger = OpenLedger();
  ASSERT_NE(ledger, nullptr);
  EXPECT_TRUE(ledger->Append("CN=vendor-a", "s", kType, "m").ok());
}

TEST_F(EgressLedgerTest, RefusesAFileThatIsNotALedger) {
  Tamper(path_, "CREATE TABLE other (x INTEGER)");
  auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kCreateIfMissing);
  EXPECT_FALSE(ledger.ok());
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr("not an egress ledger"));

  const std::string garbage = dir_ + "/garbage.db";
  std::ofstream(garbage) << std::string(8192, 'g');
  EXPECT_FALSE(EgressLedger::Open(garbage, EgressLedger::OpenMode::kMustExist).ok());
}

TEST_F(EgressLedgerTest, RefusesANewerSchemaVersion) {
  AppendEntries(1);
  Tamper(path_, "PRAGMA user_version = 2");
  auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kMustExist);
  EXPECT_EQ(ledger.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ledger.status().message()), HasSubstr("version 2"));
}

TEST_F(EgressLedgerTest, ReportsATruncatedFileAsAnErrorNotACrash) {
  AppendEntries(200);
  Tamper(path_, "PRAGMA wal_checkpoint(TRUNCATE)");
  const auto size = std::filesystem::file_size(path_);
  ASSERT_GT(size, 8192u);
  std::filesystem::resize_file(path_, size / 2);
  auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kMustExist);
  if (!ledger.ok()) {
    // Refused at open: the error names the file, so the operator knows which one is damaged.
    EXPECT_THAT(std::string(ledger.status().message()), HasSubstr(path_)) << ledger.status();
    return;
  }
  auto v = (*ledger)->Verify();
  // Either SQLite notices the damage, or the chain does: never a silent "OK" of 200 entries.
  if (v.ok()) {
    EXPECT_FALSE(v->ok && v->entry_count == 200);
  } else {
    EXPECT_THAT(std::string(v.status().message()), HasSubstr(path_));
  }
}

// A child process appends as fast as it can and reports each committed seq on a pipe; it is
// SIGKILLed once it has reported a seq chosen at random (progress, not time: the kill lands in
// the middle of the appends on any machine). Every reported entry must be there and the chain
// must verify.
TEST_F(EgressLedgerTest, KillNineDuringAppendsLosesNoCommittedEntry) {
  std::mt19937 rng(4242);
  int64_t reported_max = 0;
  // The node creates its ledger when it starts; the kills below land in appends.
  ASSERT_NE(OpenLedger(), nullptr);
  for (int round = 0; round < 5; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      auto ledger = EgressLedger::Open(path_, EgressLedger::OpenMode::kCreateIfMissing);
      if (!ledger.ok()) _exit(3);
      for (int i = 0;; ++i) {
        auto e = (*ledger)->Append("CN=vendor-a", "kill test", kType, std::to_string(i));
        if (!e.ok()) _exit(4);
        const std::string line = std::to_string(e->seq) + "\n";
        if (write(fds[1], line.data(), line.size()) < 0) _exit(5);
      }
    }
    close(fds[1]);
    const int64_t kill_after = reported_max + 1 + static_cast<int64_t>(rng() % 40);
    FILE* progress = fdopen(fds[0], "r");
    ASSERT_NE(progress, nullptr);
    bool sent_kill = false;
    for (long long seq; fscanf(progress, "%lld", &seq) == 1;) {
      reported_max = std::max<int64_t>(reported_max, seq);
      if (!sent_kill && seq >= kill_after) {
        kill(pid, SIGKILL);
        sent_kill = true;
      }
    }
    fclose(progress);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(sent_kill && WIFSIGNALED(status))
        << "child exited by itself with " << WEXITSTATUS(status);

    const LedgerVerification v = VerifyFile();
    EXPECT_TRUE(v.ok) << "round " << round << ": " << v.reason;
    EXPECT_GE(v.entry_count, reported_max) << "round " << round;
  }
  EXPECT_GT(reported_max, 0);
}

}  // namespace
}  // namespace fedface::partner
