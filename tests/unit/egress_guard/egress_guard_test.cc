// The egress guard end to end over a real ledger and budget (SQLite files), and each step alone.
#include "partner_node/egress/egress_guard.h"

#include <gmock/gmock.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/common/sha256.h"
#include "core/metrics/identification_metrics.h"
#include "partner_node/egress/ledger_anchors.h"
#include "tests/support/test_env.h"

namespace fedface::partner {
namespace {

using fedface::v1::EvaluationRelease;
using fedface::v1::RunEvaluationRequest;
using ::testing::HasSubstr;

constexpr char kVendor[] = "CN=vendor.example";

RunEvaluationRequest Request(
    const std::string& round,
    fedface::v1::EvaluationProtocol protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION) {
  RunEvaluationRequest r;
  r.set_round_id(round);
  r.set_model_version("1.2.0");
  r.set_protocol(protocol);
  r.set_seed(17);
  return r;
}

// A verification run over `subjects` subjects with 5 images each: genuine distances around 0.4,
// impostor distances around 0.85 (seeded), planned with contribution bound c.
EvaluationAggregate VerificationAggregate(int subjects, int c, int extra_non_mated = 0) {
  std::vector<SubjectImages> people;
  for (int k = 0; k < subjects; ++k) people.push_back({k + 1, 5});
  const ComparisonPlan plan = PlanVerificationComparisons(people, c, 11);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> genuine(0.40, 0.08), impostor(0.85, 0.08);
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_VERIFICATION;
  std::vector<AttributedScore> g, i;
  for (const auto& p : plan.mated) {
    g.push_back({p.subject_x, p.subject_y, genuine(rng)});
    a.genuine.Add(g.back().distance);
  }
  for (const auto& p : plan.non_mated) {
    i.push_back({p.subject_x, p.subject_y, impostor(rng)});
    a.impostor.Add(i.back().distance);
  }
  for (int k = 0; k < extra_non_mated; ++k) a.impostor.Add(impostor(rng));
  a.bounded = *ContributionBoundedHistograms::Build(c, g, i);
  a.cohort.subjects = subjects;
  a.cohort.mated_subjects = subjects;
  a.cohort.non_mated_subjects = subjects;
  a.cohort.images = 5 * subjects + 3;
  a.cohort.failures_to_enrol = 3;
  a.cohort.mated_comparisons = static_cast<int64_t>(a.genuine.total());
  a.cohort.non_mated_comparisons = static_cast<int64_t>(a.impostor.total());
  a.embeddings_per_second = 71.234;
  // Three subjects with a sixth image that failed to enrol.
  for (int k = 0; k < subjects; ++k) a.failure_rates.Add(k < 3 ? 6 : 5, k < 3 ? 1 : 0);
  return a;
}

class EgressGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("egress_guard");
    config_.k_minimum = 10;
    config_.dp.enabled = true;
    config_.dp.epsilon_per_release = 1.0;
    config_.dp.contribution_bound = 5;
    Open(7);
  }

  // (Re)opens the budget, the ledger and the guard on the same files: a node restart.
  void Open(uint64_t noise_seed) {
    guard_.reset();
    ledger_.reset();
    budget_.reset();
    budget_ = *PrivacyBudget::Open(dir_ + "/budget.db", 2.5);
    ledger_ = *EgressLedger::Open(dir_ + "/ledger.db", EgressLedger::OpenMode::kCreateIfMissing);
    absl::StatusOr<std::unique_ptr<EgressGuard>> guard = EgressGuard::Create(
        config_, budget_.get(), ledger_.get(), std::make_unique<SeededNoiseSource>(noise_seed));
    ASSERT_TRUE(guard.ok()) << guard.status();
    guard_ = *std::move(guard);
  }

  size_t LedgerSize() { return ledger_->Entries()->size(); }

  EvaluationRelease Parse(const std::string& bytes) {
    EvaluationRelease r;
    EXPECT_TRUE(r.ParseFromString(bytes));
    return r;
  }

  std::string dir_;
  EgressGuardConfig config_;
  std::unique_ptr<PrivacyBudget> budget_;
  std::unique_ptr<EgressLedger> ledger_;
  std::unique_ptr<EgressGuard> guard_;
};

TEST_F(EgressGuardTest, RejectsMessageTypesNotOnTheAllowlist) {
  // The vendor's own request type is a fedface message too, but not one that may leave.
  const RunEvaluationRequest request = Request("r1");
  absl::StatusOr<std::string> sent = guard_->Seal(kVendor, "test", request);
  EXPECT_EQ(sent.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(sent.status().message().find("fedface.v1.RunEvaluationRequest"), std::string::npos);
  fedface::v1::Counts counts;
  EXPECT_EQ(guard_->Seal(kVendor, "test", counts).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Allowlisting a type the guard has no aggregate-only shape for does not open the door.
  std::set<std::string> wider = config_.allowlist;
  wider.insert("fedface.v1.RunEvaluationRequest");
  EXPECT_EQ(CheckAllowlisted(request, wider).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(LedgerSize(), 0u);  // nothing left, nothing recorded
}

// The head of an empty ledger, for releases built without one.
fedface::v1::LedgerHead EmptyLedger() {
  fedface::v1::LedgerHead head;
  head.set_seq(0);
  head.set_entry_hash(std::string(kLedgerGenesisHash));
  return head;
}

TEST_F(EgressGuardTest, RejectsAReleaseOfTheWrongShape) {
  const EvaluationAggregate a = VerificationAggregate(40, 5);
  const EvaluationRelease good =
      BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10), nullptr, config_, EmptyLedger());
  ASSERT_TRUE(CheckAllowlisted(good, config_.allowlist).ok())
      << CheckAllowlisted(good, config_.allowlist);

  auto refused = [&](const EvaluationRelease& r) {
    return CheckAllowlisted(r, config_.allowlist).code() == absl::StatusCode::kPermissionDenied;
  };
  EvaluationRelease r = good;
  r.GetReflection()->MutableUnknownFields(&r)->AddLengthDelimited(99, "Alice_Smith/img1.jpg");
  EXPECT_TRUE(refused(r)) << "unknown field smuggling a name";
  r = good;
  r.mutable_ledger_head()->set_entry_hash("Alice_Smith");
  EXPECT_TRUE(refused(r)) << "the ledger head's hash carrying text";
  r = good;
  r.clear_ledger_head();
  EXPECT_TRUE(refused(r)) << "a release without the ledger head it extends";
  r = good;
  r.set_round_id("../../etc/passwd");
  EXPECT_TRUE(refused(r)) << "round_id outside its pattern";
  r = good;
  r.mutable_genuine_histogram()->mutable_counts()->RemoveLast();
  EXPECT_TRUE(refused(r)) << "histogram of the wrong length";
  r = good;
  r.mutable_impostor_histogram()->set_counts(3, -1.0);
  EXPECT_TRUE(refused(r)) << "negative count";
  r = good;
  r.clear_throughput();
  EXPECT_TRUE(refused(r)) << "missing part";
  r = good;
  r.mutable_roc_auc()->set_suppression(fedface::v1::SUPPRESSION_UNSPECIFIED);
  EXPECT_TRUE(refused(r)) << "no suppression state";
  r = good;
  r.mutable_genuine_histogram()->set_suppression(fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_TRUE(refused(r)) << "withheld histogram that still carries counts";
}

// Values on their grid: a number the guard's own arithmetic cannot produce is refused, so an
// embedding cannot ride in a release's doubles (as a rate, a count, a threshold, ...).
TEST_F(EgressGuardTest, RefusesValuesOffTheirGrid) {
  const EvaluationAggregate a = VerificationAggregate(400, 5);
  for (const bool dp : {false, true}) {
    SeededNoiseSource noise(4);
    const std::optional<PrivateValues> p =
        dp ? std::optional<PrivateValues>(
                 PrivateValues{AddDiscreteLaplaceNoise(*a.bounded, 1.0, noise), std::nullopt, 1.0})
           : std::nullopt;
    const EvaluationRelease good = BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10),
                                                p ? &*p : nullptr, config_, EmptyLedger());
    ASSERT_TRUE(CheckAllowlisted(good, config_.allowlist).ok())
        << CheckAllowlisted(good, config_.allowlist);
    ASSERT_EQ(good.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_NONE);
    ASSERT_EQ(good.roc_auc().suppression(), fedface::v1::SUPPRESSION_NONE);

    const float embedding_value = 0.0712345f;  // what a face descriptor's component looks like
    auto refused = [&](auto mutate, const char* what) {
      EvaluationRelease r = good;
      mutate(r);
      const absl::Status s = CheckAllowlisted(r, config_.allowlist);
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what << (dp ? " (DP)" : "");
    };
    refused([](EvaluationRelease& r) { r.mutable_genuine_histogram()->set_counts(7, 3.5); },
            "a fractional count");
    refused([&](EvaluationRelease& r) { r.mutable_roc_auc()->set_value(embedding_value); },
            "a float32 value as a rate");
    refused([&](EvaluationRelease& r) { r.mutable_fnmr_at_fmr_1e2()->set_fnmr(embedding_value); },
            "a float32 value as an FNMR");
    refused([](EvaluationRelease& r) { r.mutable_fnmr_at_fmr_1e2()->set_threshold(0.123); },
            "a threshold between bin edges");
    refused([](EvaluationRelease& r) { r.mutable_fnmr_at_fmr_1e3()->set_fmr_target(0.002); },
            "another target");
    refused([](EvaluationRelease& r) { r.mutable_eer()->set_eer(1.5); }, "a rate above 1");
    refused([](EvaluationRelease& r) { r.mutable_failure_to_enrol_rate()->set_value(0.015); },
            "a failure rate off its 0.01 grid");
    refused([](EvaluationRelease& r) { r.mutable_counts()->mutable_subjects()->set_at_least(15); },
            "a band not on the ladder");
    refused([](EvaluationRelease& r) { r.mutable_throughput()->set_embeddings_per_second(71.23); },
            "throughput with 4 significant digits");
    refused([](EvaluationRelease& r) { r.mutable_privacy()->set_epsilon(1.0000001); },
            "epsilon off its grid");
    refused(
        [](EvaluationRelease& r) {
          r.mutable_rank1_identification_rate()->set_value(0.5);  // withheld: not in protocol
        },
        "a withheld value carrying a number");
  }
}

TEST_F(EgressGuardTest, ReleasesNoisyVerificationMetricsDerivedFromNoisyHistograms) {
  // 4000 subjects: at epsilon 1 the noise leaves the metrics useful (a few hundred subjects
  // would not be: see differential_privacy.h).
  const EvaluationAggregate a = VerificationAggregate(4000, 5);
  absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(kVendor, Request("r1"), a);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const EvaluationRelease r = Parse(*bytes);

  EXPECT_EQ(r.round_id(), "r1");
  EXPECT_EQ(r.bin_edges_version(), static_cast<uint32_t>(metrics::kScoreBinEdgesVersion));
  EXPECT_EQ(r.counts().subjects().at_least(), 2000u);  // 4000 is in [2000, 5000)
  EXPECT_EQ(r.counts().subjects().below(), 5000u);
  // Under DP the image count (one subject can move it arbitrarily) stays home; the comparison
  // counts are those of the noisy histograms (about 4000 x 5 mated, 4000 x 5 / 2 x 2 non-mated).
  EXPECT_EQ(r.counts().images().suppression(), fedface::v1::SUPPRESSION_NOT_PRIVATE);
  EXPECT_EQ(r.counts().images().at_least(), 0u);
  EXPECT_EQ(r.counts().mated_comparisons().at_least(), 20000u);
  // The failure rate: the noisy mean of the subjects' own rates (3 of 4000 at 17/100: ~0.0001),
  // with noise of s.d. sqrt(2)/(0.1 x 4000) = 0.0035, on its 0.01 grid.
  ASSERT_EQ(r.failure_to_enrol_rate().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_LE(r.failure_to_enrol_rate().value(), 0.02);
  EXPECT_TRUE(r.privacy().differential_privacy());
  EXPECT_DOUBLE_EQ(r.privacy().epsilon(), 1.0);
  EXPECT_EQ(r.privacy().contribution_bound(), 5u);
  EXPECT_DOUBLE_EQ(r.throughput().embeddings_per_second(), 71.2);

  // The histograms are noisy: not the bounded ones, but close to them in total.
  ASSERT_EQ(r.genuine_histogram().counts_size(), metrics::kScoreBinCount);
  const std::vector<double> g(r.genuine_histogram().counts().begin(),
                              r.genuine_histogram().counts().end());
  const std::vector<double> i(r.impostor_histogram().counts().begin(),
                              r.impostor_histogram().counts().end());
  EXPECT_NE(g, a.bounded->genuine().counts());
  // And every metric is what the metric library derives from those released histograms.
  const metrics::ScoreHistogram gh = *metrics::ScoreHistogram::FromCounts(g);
  const metrics::ScoreHistogram ih = *metrics::ScoreHistogram::FromCounts(i);
  const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(gh, ih, 1e-2);
  ASSERT_EQ(r.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_NONE);
  // On the rate grid (1e-6): the metric library's value, rounded.
  EXPECT_NEAR(r.fnmr_at_fmr_1e2().fnmr(), f.point->fnmr, kRateStep / 2);
  EXPECT_DOUBLE_EQ(r.fnmr_at_fmr_1e2().threshold(), f.point->threshold);
  // Thresholds are bin edges, never an individual comparison's distance.
  const double t = r.fnmr_at_fmr_1e2().threshold();
  EXPECT_DOUBLE_EQ(t, metrics::kScoreBinEdges[metrics::ScoreBinIndex(t)]);
  EXPECT_NEAR(r.roc_auc().value(), *metrics::RocAuc(gh, ih), kRateStep / 2);
  EXPECT_NEAR(r.eer().eer(), metrics::Eer(gh, ih)->eer, kRateStep / 2);
  // Every count a whole number.
  for (double v : g) EXPECT_EQ(v, std::floor(v));
  // Useful despite the noise: the exact bounded histograms give AUC ~1 and EER ~0.002; over 50
  // noise seeds at this size the noisy AUC had median 0.988 and 5th percentile 0.958.
  EXPECT_GT(r.roc_auc().value(), 0.93);
  EXPECT_LT(r.eer().eer(), 0.05);
  EXPECT_EQ(r.rank1_identification_rate().suppression(), fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);

  // Charged and recorded: the ledger holds the digest of exactly these bytes.
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 1.0);
  const std::vector<LedgerEntry> entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_sha256, Sha256Hex(*bytes));
  EXPECT_EQ(entries[0].message_type, kEvaluationReleaseType);
  EXPECT_EQ(entries[0].vendor, kVendor);
}

TEST_F(EgressGuardTest, SuppressesEverythingFromACohortBelowK) {
  const EvaluationAggregate a = VerificationAggregate(9, 5);
  absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(kVendor, Request("small"), a);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const EvaluationRelease r = Parse(*bytes);
  const auto below_k = fedface::v1::SUPPRESSION_COHORT_BELOW_K;
  EXPECT_EQ(r.counts().subjects().suppression(), below_k);
  EXPECT_EQ(r.counts().subjects().at_least(), 0u);
  EXPECT_EQ(r.counts().images().suppression(), below_k);
  EXPECT_EQ(r.failure_to_enrol_rate().suppression(), below_k);
  EXPECT_EQ(r.fnmr_at_fmr_1e2().suppression(), below_k);
  EXPECT_EQ(r.eer().suppression(), below_k);
  EXPECT_EQ(r.roc_auc().suppression(), below_k);
  EXPECT_EQ(r.genuine_histogram().suppression(), below_k);
  EXPECT_EQ(r.genuine_histogram().counts_size(), 0);
  EXPECT_EQ(r.impostor_histogram().counts_size(), 0);
  EXPECT_EQ(r.throughput().suppression(), below_k);
}

TEST(EgressGuardSteps, KMinimumJudgesEachSideOnItsOwnCohort) {
  CohortCounts c;
  c.subjects = 30;
  c.mated_subjects = 8;  // most subjects have a single image
  c.non_mated_subjects = 30;
  KMinimumDecision d = ApplyKMinimum(c, 10);
  EXPECT_TRUE(d.cohort);
  EXPECT_FALSE(d.mated);
  EXPECT_TRUE(d.non_mated);
  c.subjects = 9;
  d = ApplyKMinimum(c, 10);
  EXPECT_FALSE(d.cohort || d.mated || d.non_mated);
  c.subjects = 10;
  c.mated_subjects = 10;
  c.non_mated_subjects = 10;
  d = ApplyKMinimum(c, 10);
  EXPECT_TRUE(d.cohort && d.mated && d.non_mated);
}

TEST_F(EgressGuardTest, WithholdsGenuineSideWhenMatedCohortIsBelowK) {
  EvaluationAggregate a = VerificationAggregate(40, 5);
  a.cohort.mated_subjects = 8;
  const EvaluationRelease r =
      BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10), nullptr, config_, EmptyLedger());
  EXPECT_EQ(r.genuine_histogram().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(r.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_COHORT_BELOW_K);
  EXPECT_EQ(r.impostor_histogram().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_EQ(r.counts().subjects().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_TRUE(CheckAllowlisted(r, config_.allowlist).ok());
}

// The pure step on exact histograms (a node never releases them: the guard refuses to run
// without differential privacy; the rule is the same on noisy ones).
TEST_F(EgressGuardTest, WithholdsFnmrAtFmrThatTooFewNonMatedCannotSupport) {
  // 40 subjects * c=5 / 2 = 100 planned non-mated plus 400 more: 500 non-mated comparisons.
  const EvaluationAggregate a = VerificationAggregate(40, 5, 400);
  ASSERT_GE(a.impostor.total(), 300);
  ASSERT_LT(a.impostor.total(), 3000);
  const EvaluationRelease r =
      BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10), nullptr, config_, EmptyLedger());
  ASSERT_TRUE(CheckAllowlisted(r, config_.allowlist).ok());
  EXPECT_EQ(r.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_EQ(r.fnmr_at_fmr_1e3().suppression(), fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED);
  EXPECT_EQ(r.fnmr_at_fmr_1e4().suppression(), fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED);
  EXPECT_DOUBLE_EQ(r.fnmr_at_fmr_1e3().fnmr(), 0.0);
  EXPECT_DOUBLE_EQ(r.fnmr_at_fmr_1e3().fmr_target(), 1e-3);
  EXPECT_FALSE(r.privacy().differential_privacy());
  std::vector<double> released(r.impostor_histogram().counts().begin(),
                               r.impostor_histogram().counts().end());
  EXPECT_EQ(released, a.impostor.counts());
}

TEST_F(EgressGuardTest, RepeatedRequestReturnsIdenticalBytesEvenAfterRestart) {
  const EvaluationAggregate a = VerificationAggregate(100, 5);
  absl::StatusOr<std::string> first = guard_->ReleaseEvaluation(kVendor, Request("r1"), a);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::string> second = guard_->ReleaseEvaluation(kVendor, Request("r1"), a);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, *second);
  Open(12345);  // restart with different noise: the stored release still wins
  absl::StatusOr<std::optional<std::string>> replay = guard_->Replay(kVendor, Request("r1"));
  ASSERT_TRUE(replay.ok()) << replay.status();
  ASSERT_TRUE(replay->has_value());
  EXPECT_EQ(**replay, *first);
  absl::StatusOr<std::string> third = guard_->ReleaseEvaluation(kVendor, Request("r1"), a);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, *first);
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 1.0);  // charged once
  // Each send is in the ledger, all with the same digest.
  const std::vector<LedgerEntry> entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 4u);
  for (const LedgerEntry& e : entries) EXPECT_EQ(e.message_sha256, Sha256Hex(*first));
  EXPECT_TRUE(ledger_->Verify()->ok);
  // A fresh round with the same data gets fresh noise.
  absl::StatusOr<std::string> other = guard_->ReleaseEvaluation(kVendor, Request("r2"), a);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*other, *first);
}

// The vendor's anchor: every release names the ledger head it extends, and with the anchors of
// all releases the ledger's end cannot be cut off unnoticed.
TEST_F(EgressGuardTest, EachReleaseCarriesTheLedgerHeadItExtendsAndAnchorsCatchACutEnd) {
  const EvaluationAggregate a = VerificationAggregate(100, 5);
  std::vector<LedgerAnchor> anchors;
  for (const char* round : {"r1", "r2"}) {  // the fixture's budget holds two releases
    const LedgerHeadPosition before = *ledger_->Head();
    absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(kVendor, Request(round), a);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EvaluationRelease release;
    ASSERT_TRUE(release.ParseFromString(*bytes));
    EXPECT_EQ(release.ledger_head().seq(), static_cast<uint64_t>(before.seq));
    EXPECT_EQ(release.ledger_head().entry_hash(), before.entry_hash);
    anchors.push_back({static_cast<int64_t>(release.ledger_head().seq()),
                       release.ledger_head().entry_hash(), Sha256Hex(*bytes), round});
  }
  EXPECT_EQ(anchors[0].head_seq, 0);
  EXPECT_EQ(anchors[0].head_hash, kLedgerGenesisHash);
  const AnchorVerification whole = VerifyAnchors(*ledger_->Entries(), anchors);
  EXPECT_TRUE(whole.ok) << whole.reason;
  EXPECT_EQ(whole.checked, 2);

  // The partner (or anyone with its disk) removes the last entry: the chain alone still checks.
  std::vector<LedgerEntry> cut = *ledger_->Entries();
  cut.pop_back();
  EXPECT_TRUE(VerifyChain(cut).ok);
  const AnchorVerification last_gone = VerifyAnchors(cut, anchors);
  EXPECT_FALSE(last_gone.ok);
  EXPECT_THAT(last_gone.reason, HasSubstr("anchor r2"));
  EXPECT_THAT(last_gone.reason, HasSubstr("its entry was removed"));
  cut.pop_back();
  const AnchorVerification two_gone = VerifyAnchors(cut, anchors);
  EXPECT_FALSE(two_gone.ok);
  EXPECT_THAT(two_gone.reason, HasSubstr("removed from the end of the ledger"));
}

TEST_F(EgressGuardTest, RefusesReusedRoundIdWithDifferentParameters) {
  const EvaluationAggregate a = VerificationAggregate(40, 5);
  ASSERT_TRUE(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).ok());
  RunEvaluationRequest changed = Request("r1");
  changed.set_seed(18);
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, changed, a).status().code(),
            absl::StatusCode::kAlreadyExists);
  // Another vendor's round ids are its own.
  EXPECT_TRUE(guard_->ReleaseEvaluation("CN=other-vendor", changed, a).ok());
}

TEST_F(EgressGuardTest, BudgetRefusalSurvivesRestart) {
  const EvaluationAggregate a = VerificationAggregate(40, 5);
  ASSERT_TRUE(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).ok());
  ASSERT_TRUE(guard_->ReleaseEvaluation(kVendor, Request("r2"), a).ok());
  absl::StatusOr<std::string> refused = guard_->ReleaseEvaluation(kVendor, Request("r3"), a);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("privacy budget exhausted"), std::string::npos);
  Open(8);
  refused = guard_->ReleaseEvaluation(kVendor, Request("r3"), a);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(LedgerSize(), 2u);  // the refused releases never left
  // Another identity of the vendor does not get a budget of its own.
  EXPECT_EQ(guard_->ReleaseEvaluation("CN=other-vendor", Request("r3"), a).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(LedgerSize(), 2u);
}

// No free oracle: every refusal leaves as a catalogue text and is in the ledger, exactly as the
// traffic audit recomputes it from the trailers; one whose reason depends on the evaluated data
// costs what a release costs, one that depends on the configuration or the request is free.
TEST_F(EgressGuardTest, RefusalsAreLedgeredAndChargedWhenTheyDependOnTheData) {
  // Before any work, a configuration refusal: free, recorded, catalogue text only.
  const absl::Status local_config = absl::FailedPreconditionError(
      "model version 9.9.9 is not the partner's active model and this partner does not evaluate "
      "other model versions");
  const absl::Status sent_config =
      guard_->Refuse(kVendor, "r-config", local_config, /*after_evaluation=*/true);
  EXPECT_EQ(sent_config.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(CatalogueTexts(), ::testing::Contains(std::string(sent_config.message())));
  EXPECT_DOUBLE_EQ(*budget_->SpentByAll(), 0.0);

  // After an evaluation, a refusal that depends on the data (here: how many comparisons the
  // gallery needs): charged one release's epsilon; the local detail never leaves.
  const absl::Status local_data = absl::FailedPreconditionError(
      "the request needs 123457 comparisons, more than this partner runs per request (100000)");
  const absl::Status sent_data = guard_->Refuse(kVendor, "r-data", local_data, true);
  EXPECT_EQ(sent_data.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(sent_data.message()).find("123457"), std::string::npos);
  EXPECT_DOUBLE_EQ(*budget_->SpentByAll(), config_.dp.epsilon_per_release);
  // The same reason before any evaluation ran says nothing of the data: free.
  EXPECT_EQ(guard_->Refuse(kVendor, "r-data2", local_data, /*after_evaluation=*/false), sent_data);
  EXPECT_DOUBLE_EQ(*budget_->SpentByAll(), config_.dp.epsilon_per_release);

  // A caller without a usable identity and a malformed round id: recorded without either.
  EXPECT_EQ(
      guard_
          ->Refuse("", "bad round id!", absl::UnauthenticatedError("no client certificate"), false)
          .code(),
      absl::StatusCode::kUnauthenticated);

  const std::vector<LedgerEntry> entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 4u);
  for (const LedgerEntry& e : entries) EXPECT_EQ(e.message_type, kRefusalLedgerType);
  EXPECT_EQ(entries[0].message_sha256, Sha256Hex(RefusalBytes(sent_config)));
  EXPECT_EQ(entries[0].summary, "Refusal round=r-config code=FAILED_PRECONDITION");
  EXPECT_EQ(entries[1].message_sha256, Sha256Hex(RefusalBytes(sent_data)));
  EXPECT_EQ(entries[3].vendor, "(unidentified caller)");
  EXPECT_EQ(entries[3].summary, "Refusal code=UNAUTHENTICATED");
  EXPECT_TRUE(ledger_->Verify()->ok);

  // A data-dependent refusal the budget cannot pay becomes the budget refusal (charging nothing).
  ASSERT_TRUE(budget_->Charge(kVendor, 1.0).ok());  // 2.0 of 2.5 spent
  const absl::Status exhausted = guard_->Refuse(kVendor, "r-late", local_data, true);
  EXPECT_EQ(exhausted.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(exhausted.message(), "privacy budget exhausted for this vendor");
  EXPECT_DOUBLE_EQ(*budget_->SpentByAll(), 2.0);
}

TEST_F(EgressGuardTest, AdmitRefusesBeforeAnyWorkWhatCouldNeverBeReleased) {
  EXPECT_EQ(guard_->Admit(kVendor, Request("r1", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Admission> admitted = guard_->Admit(kVendor, Request("r1"));
  ASSERT_TRUE(admitted.ok()) << admitted.status();
  EXPECT_FALSE(admitted->bytes.has_value());
  // Released once: the same request is admitted as its stored bytes, recorded again.
  const absl::StatusOr<std::string> bytes =
      guard_->ReleaseEvaluation(kVendor, Request("r1"), VerificationAggregate(40, 5));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  admitted = guard_->Admit(kVendor, Request("r1"));
  ASSERT_TRUE(admitted.ok() && admitted->bytes.has_value());
  EXPECT_EQ(*admitted->bytes, *bytes);
  EXPECT_EQ(LedgerSize(), 2u);
  // A budget that cannot pay one more release (1 of 2.5 spent, then 2): refused up front.
  ASSERT_TRUE(budget_->Charge(kVendor, 1.0).ok());
  EXPECT_EQ(guard_->Admit(kVendor, Request("r2")).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(EgressGuardTest, RefusesDpReleaseWithoutContributionBounding) {
  EvaluationAggregate a = VerificationAggregate(40, 5);
  a.bounded.reset();
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  a = VerificationAggregate(40, 3);  // bounded with another c than configured
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LedgerSize(), 0u);
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 0.0);
}

TEST_F(EgressGuardTest, RefusesInvalidRequestsAndVendorIdentities) {
  const EvaluationAggregate a = VerificationAggregate(40, 5);
  for (const char* bad : {"", "has space", "semi;colon", "../x",
                          "0123456789012345678901234567890123456789012345678901234567890123456"}) {
    EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request(bad), a).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  RunEvaluationRequest r = Request("ok");
  r.set_protocol(fedface::v1::EVALUATION_PROTOCOL_UNSPECIFIED);
  EXPECT_EQ(CheckRequest(r).code(), absl::StatusCode::kInvalidArgument);
  r = Request("ok");
  r.set_model_version("1.0 beta");
  EXPECT_EQ(CheckRequest(r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guard_->ReleaseEvaluation("", Request("ok"), a).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(guard_->ReleaseEvaluation("bad\nvendor", Request("ok"), a).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The aggregate must be of the protocol the vendor asked for.
  EXPECT_EQ(guard_
                ->ReleaseEvaluation(
                    kVendor, Request("ok", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION), a)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LedgerSize(), 0u);
}

// The "hub" route of a crafted model: under DP, one gallery subject can move many searches'
// counts, which the noise does not cover; so identification is not released at all with DP on,
// rather than released with a claim it does not keep.
TEST_F(EgressGuardTest, RefusesIdentificationWhileDifferentialPrivacyIsOn) {
  ASSERT_TRUE(config_.dp.enabled);
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  a.cohort = {.subjects = 60, .mated_subjects = 40, .non_mated_subjects = 20, .images = 140};
  absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(
      kVendor, Request("id-dp", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION), a);
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(bytes.status().message(), kIdentificationUnderDpRefused);
  EXPECT_EQ(LedgerSize(), 0u);
  EXPECT_DOUBLE_EQ(*budget_->SpentByAll(), 0.0);
}

// The pure step: identification metrics from exact histograms. No node releases them toward a
// vendor (identification is refused under differential privacy, which cannot be switched off);
// the arithmetic is kept, and tested, for a mechanism that covers gallery subjects.
TEST_F(EgressGuardTest, ReleasesIdentificationMetricsFromHistograms) {
  std::vector<metrics::MatedSearch> mated;
  for (int k = 0; k < 40; ++k) mated.push_back({k < 36 ? 1 : 2, 0.3 + 0.005 * k});
  std::vector<metrics::NonMatedSearch> non_mated;
  for (int k = 0; k < 60; ++k) non_mated.push_back({0.5 + 0.005 * k});
  EvaluationAggregate a;
  a.protocol = fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION;
  a.genuine = metrics::Rank1MateHistogram(mated);
  a.impostor = metrics::BestCandidateHistogram(non_mated);
  a.cohort = {.subjects = 60,
              .mated_subjects = 40,
              .non_mated_subjects = 20,
              .images = 140,
              .failures_to_enrol = 7,
              .mated_comparisons = 40,
              .non_mated_comparisons = 60};
  const EvaluationRelease r =
      BuildRelease(Request("id1", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION), a,
                   ApplyKMinimum(a.cohort, 10), nullptr, config_, EmptyLedger());
  ASSERT_TRUE(CheckAllowlisted(r, config_.allowlist).ok());
  EXPECT_DOUBLE_EQ(r.rank1_identification_rate().value(), 0.9);
  EXPECT_DOUBLE_EQ(r.failure_to_enrol_rate().value(), 0.05);
  // 60 non-mated searches support FPIR 0.1 (needs 30) but not 0.01 (needs 300).
  EXPECT_EQ(r.fnir_at_fpir_1e1().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_EQ(r.fnir_at_fpir_1e2().suppression(), fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED);
  EXPECT_EQ(r.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);
  EXPECT_EQ(r.eer().suppression(), fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);
  // FPIR 0.1: 6 of 60 may match: best distances 0.500..0.525 lie in bins 50..52, so the edge
  // is 0.52 (bins 50, 51: 4 searches) or 0.53 would admit 6... check against the library.
  const metrics::FnmrAtFmr f = metrics::ComputeFnmrAtFmr(a.genuine, a.impostor, 0.1);
  EXPECT_DOUBLE_EQ(r.fnir_at_fpir_1e1().threshold(), f.point->threshold);
  EXPECT_NEAR(r.fnir_at_fpir_1e1().fnir(), f.point->fnmr, kRateStep / 2);
  EXPECT_LE(r.fnir_at_fpir_1e1().fpir(), 0.1);
}

TEST(EgressGuardSteps, CountsGoIntoBands) {
  auto band = [](int64_t n) {
    const Band b = CountBandOf(n);
    return std::make_pair(b.at_least, b.below);
  };
  EXPECT_EQ(band(0), std::make_pair(uint64_t{0}, uint64_t{10}));
  EXPECT_EQ(band(9), std::make_pair(uint64_t{0}, uint64_t{10}));
  EXPECT_EQ(band(10), std::make_pair(uint64_t{10}, uint64_t{20}));
  EXPECT_EQ(band(49), std::make_pair(uint64_t{20}, uint64_t{50}));
  EXPECT_EQ(band(150), std::make_pair(uint64_t{100}, uint64_t{200}));
  EXPECT_EQ(band(199), std::make_pair(uint64_t{100}, uint64_t{200}));
  EXPECT_EQ(band(200), std::make_pair(uint64_t{200}, uint64_t{500}));
  EXPECT_EQ(band(999), std::make_pair(uint64_t{500}, uint64_t{1000}));
  EXPECT_EQ(band(1000), std::make_pair(uint64_t{1000}, uint64_t{2000}));
  EXPECT_EQ(band(123456789), std::make_pair(uint64_t{100000000}, uint64_t{200000000}));
}

TEST(EgressGuardSteps, RequestHashSeesEveryParameter) {
  RunEvaluationRequest a = Request("r1");
  RunEvaluationRequest b = a;
  EXPECT_EQ(RequestHash(a), RequestHash(b));
  b.set_non_mated_sample_size(1000);
  EXPECT_NE(RequestHash(a), RequestHash(b));
}

TEST(EgressGuardSteps, CreateRefusesInvalidConfigurations) {
  const std::string dir = testing::MakeTempDir("egress_guard_config");
  auto budget = *PrivacyBudget::Open(dir + "/b.db", 1.0);
  auto ledger = *EgressLedger::Open(dir + "/l.db", EgressLedger::OpenMode::kCreateIfMissing);
  EgressGuardConfig config;
  config.dp.epsilon_per_release = 0;
  EXPECT_FALSE(EgressGuard::Create(config, budget.get(), ledger.get(),
                                   std::make_unique<SeededNoiseSource>(1))
                   .ok());
  config = EgressGuardConfig();
  config.k_minimum = 0;
  EXPECT_FALSE(EgressGuard::Create(config, budget.get(), ledger.get(),
                                   std::make_unique<SeededNoiseSource>(1))
                   .ok());
  EXPECT_FALSE(EgressGuard::Create(EgressGuardConfig(), budget.get(), nullptr,
                                   std::make_unique<SeededNoiseSource>(1))
                   .ok());
  // No way to switch the guard's noise off toward a vendor.
  config = EgressGuardConfig();
  config.dp.enabled = false;
  const auto no_dp = EgressGuard::Create(config, budget.get(), ledger.get(),
                                         std::make_unique<SeededNoiseSource>(1));
  EXPECT_EQ(no_dp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(no_dp.status().message().find("egress.differential_privacy"), std::string::npos);
  // The layout-2 bounds and split are the partner's; out-of-range ones are refused, naming them.
  for (auto [genuine, impostor, share, key] :
       {std::tuple{0, 64, 0.8, "egress.genuine_contribution_bound"},
        std::tuple{10, 63, 0.8, "egress.impostor_contribution_bound"},
        std::tuple{10, 64, 0.99, "egress.impostor_epsilon_share"},
        std::tuple{10, 64, 0.0, "egress.impostor_epsilon_share"}}) {
    config = EgressGuardConfig();
    config.dp.genuine_contribution_bound = genuine;
    config.dp.impostor_contribution_bound = impostor;
    config.dp.impostor_epsilon_share = share;
    const auto refused = EgressGuard::Create(config, budget.get(), ledger.get(),
                                             std::make_unique<SeededNoiseSource>(1));
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_NE(refused.status().message().find(key), std::string::npos) << refused.status();
  }
}

// A vendor beyond a rate limit: every call gets the same fixed text, and only the first of the
// window is recorded (as a window row), so calls in a loop do not grow the ledger.
TEST_F(EgressGuardTest, RecordsRateLimitRefusalsOncePerWindow) {
  const absl::Status local = absl::ResourceExhaustedError(
      absl::StrCat(kRateLimitPhrase, ": kind=replays limit=2 window=2026-11-28T08:00:00Z+60s"));
  const std::string window = "kind=replays limit=2 window=2026-11-28T08:00:00Z+60s";
  for (int i = 0; i < 50; ++i) {
    const absl::Status sent = guard_->RefuseRateLimited(kVendor, local, i == 0, window);
    EXPECT_EQ(sent.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(sent.message(), kRateLimitedText);
  }
  std::vector<LedgerEntry> entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_type, kRateLimitLedgerType);
  EXPECT_EQ(entries[0].message_sha256,
            Sha256Hex(RefusalBytes(absl::ResourceExhaustedError(kRateLimitedText))));
  EXPECT_THAT(entries[0].summary, HasSubstr(window));
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 0.0);  // never charged
  // The next window's first refusal: a second row.
  (void)guard_->RefuseRateLimited(kVendor, local, /*first_in_window=*/true, window);
  EXPECT_EQ(LedgerSize(), 2u);
  // A plain refusal whose text maps to the rate-limit text is recorded as such a row too, so the
  // audit matches it with the rate-limit rule.
  (void)guard_->Refuse(kVendor, "r1", local, /*after_evaluation=*/false);
  entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].message_type, kRateLimitLedgerType);
}

}  // namespace
}  // namespace fedface::partner
