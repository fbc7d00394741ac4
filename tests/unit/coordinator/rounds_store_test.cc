// The rounds database: real SQLite files, reopened as a restarted process would, and a writer
// killed with SIGKILL half-way through a round.
#include "model_vendor/coordinator/rounds_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "tests/support/test_env.h"
#include "tests/unit/coordinator/release_fixture.h"

namespace fedface::vendor {
namespace {

using testing::MakeKMinimumRelease;
using testing::MakeRelease;
using testing::NormalDistances;
using testing::TestRequest;

RoundRecord ARound(const std::string& id) {
  RoundRecord r;
  r.request = TestRequest(id);
  r.request.seed = 18446744073709551615ull;  // the full uint64 range survives SQLite
  r.request.non_mated_sample_size = 300;
  r.quorum = 2;
  r.target_fmr = 1e-3;
  r.started_at = "2024-05-01T12:00:00Z";
  return r;
}

std::vector<PartnerOutcome> Outcomes(const RoundRequest& request) {
  std::mt19937_64 rng(3);
  PartnerOutcome a;
  a.partner = {"acme", "127.0.0.1:7001", "localhost"};
  a.status = PartnerStatus::kContributed;
  a.grpc_code = "OK";
  a.attempts = 2;
  a.elapsed_ms = 1234;
  a.release = MakeRelease(
      request, *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 50, .4, .1)),
      *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 500, .9, .1)));
  a.egress = {2, 40, 1, static_cast<int64_t>(a.release->ByteSizeLong())};
  PartnerOutcome b;
  b.partner = {"tiny", "127.0.0.1:7002", "tiny.example"};
  b.status = PartnerStatus::kWithheld;
  b.reason = "withheld by the partner's k-minimum rule";
  b.grpc_code = "OK";
  b.attempts = 1;
  b.release = MakeKMinimumRelease(request);
  PartnerOutcome c;
  c.partner = {"down", "127.0.0.1:7003", "localhost"};
  c.status = PartnerStatus::kUnreachable;
  c.reason = "unreachable after 4 attempts: Connection refused";
  c.grpc_code = "UNAVAILABLE";
  c.attempts = 4;
  c.egress = {4, 80, 0, 0};
  return {a, b, c};
}

TEST(RoundsStoreTest, ARoundReadsBackIdenticallyAfterReopening) {
  const std::string db = fedface::testing::MakeTempDir("rounds") + "/sub/rounds.db";
  RoundRecord round = ARound("round-1");
  round.outcomes = Outcomes(round.request);
  {
    auto store = RoundsStore::Open(db);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_EQ(*(*store)->BeginRound(round), 1);
    for (std::size_t i = 0; i < round.outcomes.size(); ++i) {
      ASSERT_TRUE((*store)->SaveOutcome("round-1", static_cast<int>(i), round.outcomes[i]).ok());
    }
    ASSERT_TRUE((*store)->FinishRound("round-1", "2024-05-01T12:01:00Z").ok());
  }
  auto store = RoundsStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::optional<RoundRecord>> loaded = (*store)->Load("round-1");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->has_value());
  const RoundRecord& r = **loaded;
  EXPECT_EQ(r.request.seed, round.request.seed);
  EXPECT_EQ(r.request.non_mated_sample_size, 300u);
  EXPECT_EQ(r.request.model_version, "1.0.0");
  EXPECT_EQ(r.request.protocol, fedface::v1::EVALUATION_PROTOCOL_VERIFICATION);
  EXPECT_EQ(r.finished_at, "2024-05-01T12:01:00Z");
  EXPECT_EQ(r.quorum, 2);
  ASSERT_EQ(r.outcomes.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const PartnerOutcome& want = round.outcomes[i];
    const PartnerOutcome& got = r.outcomes[i];
    EXPECT_EQ(got.partner.name, want.partner.name);
    EXPECT_EQ(got.partner.certificate_name, want.partner.certificate_name);
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.reason, want.reason);
    EXPECT_EQ(got.grpc_code, want.grpc_code);
    EXPECT_EQ(got.attempts, want.attempts);
    EXPECT_EQ(got.elapsed_ms, want.elapsed_ms);
    EXPECT_EQ(got.egress.bytes_received, want.egress.bytes_received);
    EXPECT_EQ(got.egress.requests_sent, want.egress.requests_sent);
    ASSERT_EQ(got.release.has_value(), want.release.has_value());
    if (want.release) {
      EXPECT_EQ(got.release->SerializeAsString(), want.release->SerializeAsString());
    }
  }
  absl::StatusOr<std::vector<RoundSummary>> list = (*store)->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state, "quorum_not_met");  // 1 of 3 contributed, quorum 2
  EXPECT_EQ((*list)[0].contributed, 1);
  EXPECT_EQ((*list)[0].partners, 3);
  EXPECT_FALSE((*(*store)->Load("nope")).has_value());
}

TEST(RoundsStoreTest, ARerunOfTheSameRequestIsCountedAndReplacesTheOutcomes) {
  const std::string db = fedface::testing::MakeTempDir("rounds") + "/rounds.db";
  auto store = RoundsStore::Open(db);
  ASSERT_TRUE(store.ok());
  RoundRecord round = ARound("round-1");
  const std::vector<PartnerOutcome> outcomes = Outcomes(round.request);
  ASSERT_EQ(*(*store)->BeginRound(round), 1);
  ASSERT_TRUE((*store)->SaveOutcome("round-1", 2, outcomes[2]).ok());
  ASSERT_EQ(*(*store)->BeginRound(round), 2);
  ASSERT_TRUE((*store)->SaveOutcome("round-1", 0, outcomes[0]).ok());
  ASSERT_TRUE((*store)->FinishRound("round-1", "2024-05-01T13:00:00Z").ok());
  const RoundRecord r = **(*store)->Load("round-1");
  EXPECT_EQ(r.runs, 2);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].partner.name, "acme");
}

TEST(RoundsStoreTest, RefusesToReuseARoundIdForAnotherRequest) {
  const std::string db = fedface::testing::MakeTempDir("rounds") + "/rounds.db";
  auto store = RoundsStore::Open(db);
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->BeginRound(ARound("round-1")).ok());
  RoundRecord other_model = ARound("round-1");
  other_model.request.model_version = "2.0.0";
  absl::StatusOr<int> s = (*store)->BeginRound(other_model);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("model version 1.0.0"), std::string::npos) << s.status();
  RoundRecord other_protocol = ARound("round-1");
  other_protocol.request.protocol = fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  EXPECT_FALSE((*store)->BeginRound(other_protocol).ok());
  RoundRecord other_sample = ARound("round-1");
  other_sample.request.non_mated_sample_size = 1;
  EXPECT_NE((*store)->BeginRound(other_sample).status().message().find("non_mated_sample_size"),
            std::string::npos);
  EXPECT_EQ((**(*store)->Load("round-1")).runs, 1);
}

TEST(RoundsStoreTest, ARoundWhoseWriterWasKilledIsListedAsRunningWithWhatItSaved) {
  const std::string db = fedface::testing::MakeTempDir("rounds") + "/rounds.db";
  const RoundRecord round = ARound("round-k");
  const std::vector<PartnerOutcome> outcomes = Outcomes(round.request);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = RoundsStore::Open(db);
    if (!store.ok() || !(*store)->BeginRound(round).ok() ||
        !(*store)->SaveOutcome("round-k", 0, outcomes[0]).ok()) {
      _exit(3);
    }
    raise(SIGKILL);  // mid-round: no FinishRound, no clean close
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exit " << WEXITSTATUS(status);
  auto store = RoundsStore::Open(db);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::vector<RoundSummary> list = *(*store)->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].state, "running");
  EXPECT_EQ(list[0].partners, 1);
  const RoundRecord r = **(*store)->Load("round-k");
  EXPECT_EQ(r.finished_at, "");
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].release->SerializeAsString(), outcomes[0].release->SerializeAsString());
}

TEST(RoundsStoreTest, RefusesAFileThatIsNotARoundsDatabase) {
  const std::string dir = fedface::testing::MakeTempDir("rounds");
  std::ofstream(dir + "/text.db") << "not sqlite at all, just some text that is long enough";
  EXPECT_FALSE(RoundsStore::Open(dir + "/text.db").ok());
  // Another program's SQLite database.
  {
    auto store = RoundsStore::Open(dir + "/ok.db");
    ASSERT_TRUE(store.ok());
  }
  const std::string other = dir + "/other.db";
  ASSERT_EQ(system(("sqlite3 " + other +
                    " 'CREATE TABLE t(x);' 2>/dev/null || python3 -c "
                    "\"import sqlite3; sqlite3.connect('" +
                    other +
                    "').execute('CREATE TABLE "
                    "t(x)')\"")
                       .c_str()),
            0);
  absl::StatusOr<std::unique_ptr<RoundsStore>> s = RoundsStore::Open(other);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("not a fedface rounds database"), std::string::npos)
      << s.status();
}

TEST(RoundsStoreTest, RefusesAStoredReleaseThatNoLongerChecksOut) {
  const std::string db = fedface::testing::MakeTempDir("rounds") + "/rounds.db";
  auto store = RoundsStore::Open(db);
  ASSERT_TRUE(store.ok());
  RoundRecord round = ARound("round-1");
  ASSERT_TRUE((*store)->BeginRound(round).ok());
  PartnerOutcome o = Outcomes(round.request)[0];
  o.release->set_round_id("round-other");
  ASSERT_TRUE((*store)->SaveOutcome("round-1", 0, o).ok());
  absl::StatusOr<std::optional<RoundRecord>> loaded = (*store)->Load("round-1");
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(loaded.status().message().find("acme"), std::string::npos);
}

}  // namespace
}  // namespace fedface::vendor
