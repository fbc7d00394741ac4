// What the vendor accepts from a partner: a release that answers the request, over the fixed
// bins, with well-formed values. Anything else is that partner's failure, never a crash.
#include "model_vendor/coordinator/release_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "tests/unit/coordinator/release_fixture.h"

namespace fedface::vendor {
namespace {

using testing::MakeKMinimumRelease;
using testing::MakeRelease;
using testing::NormalDistances;
using testing::TestRequest;

fedface::v1::EvaluationRelease Good(const RoundRequest& request) {
  std::mt19937_64 rng(1);
  return MakeRelease(request,
                     *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 100, 0.4, 0.1)),
                     *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 900, 0.9, 0.1)));
}

TEST(ReleaseCheckTest, AcceptsAWellFormedReleaseAndClassifiesItAsContributed) {
  const RoundRequest request = TestRequest();
  const auto release = Good(request);
  EXPECT_TRUE(CheckRelease(release, request).ok()) << CheckRelease(release, request);
  std::string reason = "x";
  EXPECT_EQ(ClassifyRelease(release, &reason), PartnerStatus::kContributed);
  EXPECT_EQ(reason, "");
}

TEST(ReleaseCheckTest, RefusesAReleaseThatAnswersAnotherRequest) {
  const RoundRequest request = TestRequest();
  auto other_round = Good(request);
  other_round.set_round_id("round-2");
  EXPECT_NE(CheckRelease(other_round, request).message().find("round_id"), std::string::npos);
  auto other_model = Good(request);
  other_model.set_model_version("9.9.9");
  EXPECT_NE(CheckRelease(other_model, request).message().find("model_version"), std::string::npos);
  auto other_protocol = Good(request);
  other_protocol.set_protocol(fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION);
  EXPECT_FALSE(CheckRelease(other_protocol, request).ok());
  auto other_edges = Good(request);
  other_edges.set_bin_edges_version(3);
  EXPECT_NE(CheckRelease(other_edges, request).message().find("bin_edges_version"),
            std::string::npos);
  // Layout-1 counts declared as layout 2 (201 bins, no noise stated).
  auto relabelled = Good(request);
  relabelled.set_bin_edges_version(2);
  EXPECT_FALSE(CheckRelease(relabelled, request).ok());
}

fedface::v1::EvaluationRelease GoodLayoutTwo(const RoundRequest& request) {
  std::mt19937_64 rng(2);
  return testing::MakeLayoutTwoRelease(request, NormalDistances(rng, 2000, 0.44, 0.07),
                                       NormalDistances(rng, 20000, 0.83, 0.075), {}, rng);
}

// Bin layout 2 (issue 12): 21 raw noisy counts (negative allowed) with the noise the release
// states; anything malformed or mixed is that partner's failure.
TEST(ReleaseCheckTest, AcceptsALayoutTwoReleaseAndRefusesMalformedOnes) {
  const RoundRequest request = TestRequest();
  const auto good = GoodLayoutTwo(request);
  ASSERT_TRUE(CheckRelease(good, request).ok()) << CheckRelease(good, request);
  std::string reason = "x";
  EXPECT_EQ(ClassifyRelease(good, &reason), PartnerStatus::kContributed);
  auto negative = good;
  negative.mutable_impostor_histogram()->set_counts(20, -4);  // raw noise: allowed
  EXPECT_TRUE(CheckRelease(negative, request).ok());

  auto refused = [&](auto mutate, const char* field) {
    auto r = good;
    mutate(r);
    const absl::Status s = CheckRelease(r, request);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_NE(s.message().find(field), std::string::npos) << s;
  };
  refused([](auto& r) { r.mutable_genuine_histogram()->add_counts(1); }, "genuine_histogram");
  refused([](auto& r) { r.mutable_impostor_histogram()->mutable_counts()->RemoveLast(); },
          "impostor_histogram");
  refused([](auto& r) { r.mutable_genuine_histogram()->set_counts(3, 2.5); }, "genuine_histogram");
  refused(
      [](auto& r) {
        r.mutable_genuine_histogram()->set_counts(3, std::numeric_limits<double>::infinity());
      },
      "genuine_histogram");
  refused([](auto& r) { r.mutable_privacy()->set_differential_privacy(false); },
          "bin_edges_version");
  refused([](auto& r) { r.mutable_privacy()->set_genuine_noise_scale(0); }, "privacy");
  refused([](auto& r) { r.mutable_privacy()->set_impostor_contribution_bound(7); }, "privacy");
  // Noise too small for the epsilon the release was charged: intervals would be too narrow.
  refused(
      [](auto& r) {
        r.mutable_privacy()->set_impostor_noise_scale(r.privacy().impostor_noise_scale() / 2);
      },
      "privacy");
  refused([](auto& r) { r.mutable_privacy()->set_epsilon(0.5); }, "privacy");
  // A layout-1 release stating layout-2 noise is mixed: refused too.
  auto mixed = Good(request);
  mixed.mutable_privacy()->set_genuine_noise_scale(2);
  EXPECT_NE(CheckRelease(mixed, request).message().find("privacy"), std::string::npos);
}

TEST(ReleaseCheckTest, QuotesOnlyPrintableCharactersOfWhatThePartnerSent) {
  const RoundRequest request = TestRequest();
  auto release = Good(request);
  release.set_round_id(std::string("\x01\xff<b>", 5) + std::string(200, 'a'));
  const std::string message(CheckRelease(release, request).message());
  EXPECT_EQ(message.find('\x01'), std::string::npos);
  EXPECT_EQ(message.find('\xff'), std::string::npos);
  EXPECT_LT(message.size(), 200u);
}

TEST(ReleaseCheckTest, RefusesHistogramsOfAnotherShape) {
  const RoundRequest request = TestRequest();
  auto short_histogram = Good(request);
  short_histogram.mutable_genuine_histogram()->mutable_counts()->RemoveLast();
  EXPECT_NE(CheckRelease(short_histogram, request).message().find("200 bins"), std::string::npos);
  auto negative = Good(request);
  negative.mutable_impostor_histogram()->set_counts(7, -1);
  EXPECT_NE(CheckRelease(negative, request).message().find("bin 7"), std::string::npos);
  auto nan = Good(request);
  nan.mutable_impostor_histogram()->set_counts(3, std::nan(""));
  EXPECT_FALSE(CheckRelease(nan, request).ok());
  auto withheld_with_counts = MakeKMinimumRelease(request);
  withheld_with_counts.mutable_genuine_histogram()->add_counts(1);
  EXPECT_NE(CheckRelease(withheld_with_counts, request).message().find("withheld but"),
            std::string::npos);
}

TEST(ReleaseCheckTest, RefusesMetricsWithoutAStateOrOutsideTheirRange) {
  const RoundRequest request = TestRequest();
  auto unspecified = Good(request);
  unspecified.mutable_eer()->set_suppression(fedface::v1::SUPPRESSION_UNSPECIFIED);
  EXPECT_NE(CheckRelease(unspecified, request).message().find("eer"), std::string::npos);
  auto rate = Good(request);
  rate.mutable_fnmr_at_fmr_1e2()->set_fnmr(1.5);
  EXPECT_NE(CheckRelease(rate, request).message().find("fnmr_at_fmr_1e2.fnmr"), std::string::npos);
  auto inf = Good(request);
  inf.mutable_roc_auc()->set_value(std::numeric_limits<double>::infinity());
  EXPECT_FALSE(CheckRelease(inf, request).ok());
  auto band = Good(request);
  band.mutable_counts()->mutable_subjects()->set_below(0);
  EXPECT_FALSE(CheckRelease(band, request).ok());
}

TEST(ReleaseCheckTest, ClassifiesAKMinimumReleaseAsWithheldWithTheReason) {
  const RoundRequest request = TestRequest();
  const auto release = MakeKMinimumRelease(request);
  ASSERT_TRUE(CheckRelease(release, request).ok()) << CheckRelease(release, request);
  std::string reason;
  EXPECT_EQ(ClassifyRelease(release, &reason), PartnerStatus::kWithheld);
  EXPECT_NE(reason.find("k-minimum"), std::string::npos) << reason;
}

TEST(ReleaseCheckTest, ClassifiesAnEmptyHistogramAsWithheld) {
  const RoundRequest request = TestRequest();
  auto release = Good(request);
  for (int k = 0; k < release.genuine_histogram().counts_size(); ++k) {
    release.mutable_genuine_histogram()->set_counts(k, 0);
  }
  std::string reason;
  EXPECT_EQ(ClassifyRelease(release, &reason), PartnerStatus::kWithheld);
  EXPECT_NE(reason.find("empty genuine"), std::string::npos) << reason;
}

}  // namespace
}  // namespace fedface::vendor
