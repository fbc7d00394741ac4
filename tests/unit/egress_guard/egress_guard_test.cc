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

// The fixture's verification bounds (c_g, c_i): its configuration's.
constexpr VerificationBounds kBounds{5, 10};

// A verification run over `subjects` subjects with 5 images each: genuine distances around 0.4,
// impostor distances around 0.85 (seeded), planned with the contribution bounds c_g, c_i.
EvaluationAggregate VerificationAggregate(int subjects, VerificationBounds bounds = kBounds,
                                          int extra_non_mated = 0) {
  std::vector<SubjectImages> people;
  for (int k = 0; k < subjects; ++k) people.push_back({k + 1, 5});
  const ComparisonPlan plan = PlanVerificationComparisons(people, bounds, 11);
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
  a.bounded = *ContributionBoundedHistograms::Build(bounds, g, i);
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
    config_.dp.genuine_contribution_bound = kBounds.genuine;
    config_.dp.impostor_contribution_bound = kBounds.impostor;
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
  const EvaluationAggregate a = VerificationAggregate(40);
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
  // 10000 subjects: enough that layout 2's noise leaves FNMR @ FMR 1e-2 and the AUC released.
  const EvaluationAggregate a = VerificationAggregate(10000);
  for (const bool dp : {false, true}) {
    SeededNoiseSource noise(4);
    std::optional<PrivateValues> p;
    if (dp) {  // layout 2: what the guard releases under differential privacy
      p.emplace();
      p->layout_v2 = AddLayoutV2Noise(*a.bounded, 1.0, config_.dp.impostor_epsilon_share, noise);
      p->epsilon = 1.0;
    }
    const EvaluationRelease good = BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10),
                                                p ? &*p : nullptr, config_, EmptyLedger());
    ASSERT_TRUE(CheckAllowlisted(good, config_.allowlist, &config_.dp).ok())
        << CheckAllowlisted(good, config_.allowlist, &config_.dp);
    ASSERT_EQ(good.bin_edges_version(), dp ? 2u : 1u);
    ASSERT_EQ(good.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_NONE);
    ASSERT_EQ(good.roc_auc().suppression(), fedface::v1::SUPPRESSION_NONE);

    const float embedding_value = 0.0712345f;  // what a face descriptor's component looks like
    auto refused = [&](auto mutate, const char* what) {
      EvaluationRelease r = good;
      mutate(r);
      const absl::Status s = CheckAllowlisted(r, config_.allowlist, &config_.dp);
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what << (dp ? " (DP)" : "");
    };
    refused([](EvaluationRelease& r) { r.mutable_genuine_histogram()->set_counts(7, 3.5); },
            "a fractional count");
    refused([&](EvaluationRelease& r) { r.mutable_roc_auc()->set_value(embedding_value); },
            "a float32 value as a rate");
    refused([&](EvaluationRelease& r) { r.mutable_fnmr_at_fmr_1e2()->set_fnmr(embedding_value); },
            "a float32 value as an FNMR");
    refused([](EvaluationRelease& r) { r.mutable_fnmr_at_fmr_1e2()->set_threshold(0.1234567); },
            "a threshold between bin edges (layout 1) or off the rate grid (layout 2)");
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
  const EvaluationAggregate a = VerificationAggregate(4000);
  absl::StatusOr<std::string> bytes = guard_->ReleaseEvaluation(kVendor, Request("r1"), a);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const EvaluationRelease r = Parse(*bytes);

  EXPECT_EQ(r.round_id(), "r1");
  // Differential privacy: bin layout 2 (21 fixed bins), raw noisy counts.
  EXPECT_EQ(r.bin_edges_version(), static_cast<uint32_t>(metrics::kBinLayoutV2));
  EXPECT_EQ(r.counts().subjects().at_least(), 2000u);  // 4000 is in [2000, 5000)
  EXPECT_EQ(r.counts().subjects().below(), 5000u);
  // Under DP the image count (one subject can move it arbitrarily) stays home; the comparison
  // counts are those of the noisy histograms (4000 x 5 mated, 4000 x 5 non-mated).
  EXPECT_EQ(r.counts().images().suppression(), fedface::v1::SUPPRESSION_NOT_PRIVATE);
  EXPECT_EQ(r.counts().images().at_least(), 0u);
  EXPECT_EQ(r.counts().mated_comparisons().at_least(), 20000u);
  EXPECT_EQ(r.counts().non_mated_comparisons().at_least(), 20000u);
  // The failure rate: the noisy mean of the subjects' own rates (3 of 4000 at 17/100: ~0.0001),
  // with noise of s.d. sqrt(2)/(0.1 x 4000) = 0.0035, on its 0.01 grid.
  ASSERT_EQ(r.failure_to_enrol_rate().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_LE(r.failure_to_enrol_rate().value(), 0.02);
  // The accounting is the partner's configuration: epsilon 1 of which 0.1 on the failure rate,
  // 0.9 on the histograms split 1:4, so genuine 5 / 0.18 and impostor 3 x 5 / 0.72.
  const fedface::v1::PrivacyAccounting& p = r.privacy();
  EXPECT_TRUE(p.differential_privacy());
  EXPECT_DOUBLE_EQ(p.epsilon(), 1.0);
  EXPECT_EQ(p.contribution_bound(), 10u);
  EXPECT_EQ(p.genuine_contribution_bound(), 5u);
  EXPECT_EQ(p.impostor_contribution_bound(), 10u);
  EXPECT_NEAR(p.genuine_noise_scale(), 5 / 0.18, 1e-9);
  EXPECT_NEAR(p.impostor_noise_scale(), 15 / 0.72, 1e-9);
  EXPECT_DOUBLE_EQ(r.throughput().embeddings_per_second(), 71.2);

  // The histograms are the raw noisy layout-2 counts: whole numbers, not the exact ones, close
  // in total.
  ASSERT_EQ(r.genuine_histogram().counts_size(), metrics::kLayoutV2Bins);
  ASSERT_EQ(r.impostor_histogram().counts_size(), metrics::kLayoutV2Bins);
  const std::vector<double> g(r.genuine_histogram().counts().begin(),
                              r.genuine_histogram().counts().end());
  const std::vector<double> i(r.impostor_histogram().counts().begin(),
                              r.impostor_histogram().counts().end());
  EXPECT_NE(g, a.bounded->genuine_v2());
  EXPECT_NE(i, a.bounded->impostor_v2());
  for (double v : g) EXPECT_EQ(v, std::floor(v));
  double g_total = 0;
  for (double v : g) g_total += v;
  EXPECT_NEAR(g_total, 20000, 600);
  // And every metric is what DeriveVerificationMetrics gives from those released counts with
  // the stated scales (what the vendor computes too).
  const metrics::PublicNoise noise{{{p.genuine_noise_scale()}}, {{p.impostor_noise_scale()}}};
  const metrics::DerivedMetrics d = *metrics::DeriveVerificationMetrics(2, g, i, noise);
  // At 4000 subjects FNMR @ FMR 1e-2 is withheld as too noisy by the public rule (the FMR's
  // noise s.d. at its threshold above a third of the target), the same rule the vendor applies.
  const fedface::v1::FnmrAtFmr* fnmr[] = {&r.fnmr_at_fmr_1e2(), &r.fnmr_at_fmr_1e3(),
                                          &r.fnmr_at_fmr_1e4()};
  for (std::size_t k = 0; k < 3; ++k) {
    const metrics::DerivedRate& want = d.fnmr_at_fmr[k];
    if (want.value) {
      ASSERT_EQ(fnmr[k]->suppression(), fedface::v1::SUPPRESSION_NONE) << k;
      EXPECT_NEAR(fnmr[k]->fnmr(), *want.value, kRateStep / 2);
      EXPECT_NEAR(fnmr[k]->threshold(), *want.threshold, kRateStep / 2);
    } else {
      EXPECT_EQ(fnmr[k]->suppression(), want.withheld == metrics::Withheld::kTooNoisy
                                            ? fedface::v1::SUPPRESSION_TOO_NOISY
                                            : fedface::v1::SUPPRESSION_INSUFFICIENT_NON_MATED)
          << k;
      EXPECT_EQ(fnmr[k]->fnmr(), 0) << k;
    }
  }
  EXPECT_EQ(r.fnmr_at_fmr_1e2().suppression(), fedface::v1::SUPPRESSION_TOO_NOISY);
  ASSERT_EQ(r.roc_auc().suppression(), fedface::v1::SUPPRESSION_NONE);
  EXPECT_NEAR(r.roc_auc().value(), *d.roc_auc.value, kRateStep / 2);
  EXPECT_NEAR(r.eer().eer(), *d.eer.value, kRateStep / 2);
  // Useful despite the noise: exact AUC ~1, EER ~0.002.
  EXPECT_GT(r.roc_auc().value(), 0.97);
  EXPECT_LT(r.eer().eer(), 0.03);
  EXPECT_EQ(r.rank1_identification_rate().suppression(), fedface::v1::SUPPRESSION_NOT_IN_PROTOCOL);

  // Charged once, exactly epsilon, and recorded: the ledger holds the digest of these bytes.
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 1.0);
  const std::vector<LedgerEntry> entries = *ledger_->Entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].message_sha256, Sha256Hex(*bytes));
  EXPECT_EQ(entries[0].message_type, kEvaluationReleaseType);
  EXPECT_EQ(entries[0].vendor, kVendor);
}

// A hostile vendor controls the request only (round id, model version, protocol, seed, sample
// size, and any unknown field it adds). Nothing in it reaches the bins, the bounds, the split
// or the noise scales: every release states the same accounting, the partner's.
TEST_F(EgressGuardTest, ARequestCannotChooseTheBinsBoundsOrNoiseScales) {
  const EvaluationAggregate a = VerificationAggregate(400);
  std::vector<RunEvaluationRequest> requests;
  for (uint64_t seed : {0ULL, 1ULL, 17ULL, ~0ULL}) {
    for (uint64_t sample : {0ULL, 1ULL, 64ULL, ~0ULL}) {
      RunEvaluationRequest r = Request(absl::StrCat("r", requests.size()));
      r.set_seed(seed);
      r.set_non_mated_sample_size(sample);
      requests.push_back(r);
    }
  }
  // Unknown fields posing as an epsilon, a bound and a bin layout.
  RunEvaluationRequest crafted = Request("crafted");
  auto* unknown = crafted.GetReflection()->MutableUnknownFields(&crafted);
  unknown->AddFixed64(6, 0x4059000000000000ULL);  // 100.0 as a double
  unknown->AddVarint(7, 1);
  unknown->AddVarint(8, 201);
  requests.push_back(crafted);
  std::optional<fedface::v1::PrivacyAccounting> first;
  for (const RunEvaluationRequest& request : requests) {
    absl::StatusOr<std::string> composed =
        PreviewRelease(config_, request, a, EmptyLedger());  // charges and records nothing
    if (!composed.ok()) {
      // A request the guard does not take changes nothing either.
      EXPECT_EQ(composed.status().code(), absl::StatusCode::kInvalidArgument) << composed.status();
      continue;
    }
    const EvaluationRelease r = Parse(*composed);
    EXPECT_EQ(r.bin_edges_version(), 2u);
    EXPECT_EQ(r.genuine_histogram().counts_size(), metrics::kLayoutV2Bins);
    EXPECT_EQ(r.impostor_histogram().counts_size(), metrics::kLayoutV2Bins);
    EXPECT_EQ(r.privacy().SerializeAsString(),
              LayoutV2Accounting(config_.dp, r.failure_to_enrol_rate().suppression() ==
                                                 fedface::v1::SUPPRESSION_NONE)
                  .SerializeAsString());
    if (!first) first = r.privacy();
    EXPECT_EQ(r.privacy().SerializeAsString(), first->SerializeAsString());
  }
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(LedgerSize(), 0u);
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 0.0);
}

// Layout 2 on the allowlist: exactly 21 bins per histogram, raw counts (negative allowed), the
// accounting exactly the partner's configuration; anything mixed or unknown is refused.
TEST_F(EgressGuardTest, LayoutTwoShapeIsFixedByThePartnersConfiguration) {
  const EvaluationAggregate a = VerificationAggregate(400);
  SeededNoiseSource noise(9);
  PrivateValues p;
  p.layout_v2 = AddLayoutV2Noise(*a.bounded, 1.0, config_.dp.impostor_epsilon_share, noise);
  p.epsilon = 1.0;
  const EvaluationRelease good =
      BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10), &p, config_, EmptyLedger());
  ASSERT_TRUE(CheckAllowlisted(good, config_.allowlist, &config_.dp).ok())
      << CheckAllowlisted(good, config_.allowlist, &config_.dp);
  auto refusal = [&](auto mutate, const DifferentialPrivacyConfig* dp) {
    EvaluationRelease r = good;
    mutate(r);
    return CheckAllowlisted(r, config_.allowlist, dp);
  };
  auto refused = [&](auto mutate, const char* what) {
    const absl::Status s = refusal(mutate, &config_.dp);
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << what;
  };
  // Raw noisy counts may be negative.
  EXPECT_TRUE(
      refusal([](EvaluationRelease& r) { r.mutable_impostor_histogram()->set_counts(20, -3); },
              &config_.dp)
          .ok());
  refused([](EvaluationRelease& r) { r.mutable_genuine_histogram()->add_counts(0); },
          "22 genuine bins");
  refused(
      [](EvaluationRelease& r) { r.mutable_impostor_histogram()->mutable_counts()->RemoveLast(); },
      "20 impostor bins");
  refused(
      [](EvaluationRelease& r) {
        r.mutable_genuine_histogram()->clear_counts();
        for (int k = 0; k < metrics::kScoreBinCount; ++k)
          r.mutable_genuine_histogram()->add_counts(0);
      },
      "a layout-1 histogram in a layout-2 release");
  refused([](EvaluationRelease& r) { r.set_bin_edges_version(1); },
          "layout-2 counts declared as layout 1");
  refused([](EvaluationRelease& r) { r.set_bin_edges_version(3); }, "an unknown layout");
  refused([](EvaluationRelease& r) { r.set_bin_edges_version(0); }, "no layout");
  refused([](EvaluationRelease& r) { r.mutable_genuine_histogram()->set_counts(4, 0.5); },
          "a fractional raw count");
  // Every accounting field is the configuration's.
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_genuine_noise_scale(1.0); },
          "a genuine noise scale other than the configuration's");
  refused(
      [](EvaluationRelease& r) {
        r.mutable_privacy()->set_impostor_noise_scale(r.privacy().impostor_noise_scale() * 2);
      },
      "an impostor noise scale other than the configuration's");
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_genuine_contribution_bound(6); },
          "another c_g");
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_impostor_contribution_bound(64); },
          "another c_i");
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_contribution_bound(5); },
          "another c");
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_epsilon(2.0); }, "another epsilon");
  refused([](EvaluationRelease& r) { r.mutable_privacy()->set_differential_privacy(false); },
          "layout 2 without differential privacy");
  refused(
      [](EvaluationRelease& r) { r.set_protocol(fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION); },
      "layout 2 for identification");
  // The split is the configuration's too: another share gives other scales.
  DifferentialPrivacyConfig other = config_.dp;
  other.impostor_epsilon_share = 0.5;
  EXPECT_EQ(refusal([](EvaluationRelease&) {}, &other).code(), absl::StatusCode::kPermissionDenied);
  // Nothing to check the scales against: refused.
  EXPECT_EQ(refusal([](EvaluationRelease&) {}, nullptr).code(),
            absl::StatusCode::kPermissionDenied);

  // A layout-1 release carries no layout-2 parameters.
  const EvaluationRelease exact =
      BuildRelease(Request("r1"), a, ApplyKMinimum(a.cohort, 10), nullptr, config_, EmptyLedger());
  ASSERT_EQ(exact.bin_edges_version(), 1u);
  ASSERT_TRUE(CheckAllowlisted(exact, config_.allowlist, &config_.dp).ok());
  EvaluationRelease mixed = exact;
  mixed.mutable_privacy()->set_impostor_noise_scale(20.8);
  EXPECT_EQ(CheckAllowlisted(mixed, config_.allowlist, &config_.dp).code(),
            absl::StatusCode::kPermissionDenied);
  mixed = exact;
  mixed.mutable_genuine_histogram()->clear_counts();
  for (int k = 0; k < metrics::kLayoutV2Bins; ++k) mixed.mutable_genuine_histogram()->add_counts(0);
  EXPECT_EQ(CheckAllowlisted(mixed, config_.allowlist, &config_.dp).code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(EgressGuardTest, SuppressesEverythingFromACohortBelowK) {
  const EvaluationAggregate a = VerificationAggregate(9);
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
  EvaluationAggregate a = VerificationAggregate(40);
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
  const EvaluationAggregate a = VerificationAggregate(40, kBounds, 400);
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
  const EvaluationAggregate a = VerificationAggregate(100);
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
  const EvaluationAggregate a = VerificationAggregate(100);
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
  const EvaluationAggregate a = VerificationAggregate(40);
  ASSERT_TRUE(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).ok());
  RunEvaluationRequest changed = Request("r1");
  changed.set_seed(18);
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, changed, a).status().code(),
            absl::StatusCode::kAlreadyExists);
  // Another vendor's round ids are its own.
  EXPECT_TRUE(guard_->ReleaseEvaluation("CN=other-vendor", changed, a).ok());
}

TEST_F(EgressGuardTest, BudgetRefusalSurvivesRestart) {
  const EvaluationAggregate a = VerificationAggregate(40);
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
      guard_->ReleaseEvaluation(kVendor, Request("r1"), VerificationAggregate(40));
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
  EvaluationAggregate a = VerificationAggregate(40);
  a.bounded.reset();
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  a = VerificationAggregate(40, {3, 10});  // bounded with another c_g than configured
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  a = VerificationAggregate(40, {5, 12});  // another c_i
  EXPECT_EQ(guard_->ReleaseEvaluation(kVendor, Request("r1"), a).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LedgerSize(), 0u);
  EXPECT_DOUBLE_EQ(*budget_->Spent(kVendor), 0.0);
}

TEST_F(EgressGuardTest, RefusesInvalidRequestsAndVendorIdentities) {
  const EvaluationAggregate a = VerificationAggregate(40);
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
