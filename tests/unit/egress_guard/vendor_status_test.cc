// What a vendor reads in a refusal: only the fixed catalogue, whatever the local text held.
#include "partner_node/egress/vendor_status.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"

namespace fedface::partner {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

bool InCatalogue(const std::string& text) {
  const std::vector<std::string> all = CatalogueTexts();
  return std::find(all.begin(), all.end(), text) != all.end();
}

TEST(VendorStatusTest, ReplacesLocalDetailWithTheCataloguesFixedText) {
  struct Case {
    absl::Status local;
    std::string must_not_leak;
  };
  const Case cases[] = {
      {absl::AlreadyExistsError("/srv/partner/egress_ledger.db: insert: UNIQUE constraint failed"),
       "/srv/partner"},
      {absl::FailedPreconditionError("held for approval (id 17): the partner reviews each release"),
       "17"},
      {absl::ResourceExhaustedError("privacy budget exhausted for this vendor: spent epsilon 2.5 "
                                    "of 3, this release needs 1"),
       "2.5"},
      {absl::PermissionDeniedError("vendor 'CN=someone-else' is not allowed"), "someone-else"},
      {absl::PermissionDeniedError("the partner declined release 42 of this round"), "42"},
      {absl::InternalError("gallery.db: database disk image is malformed (Alice_Smith/img1.jpg)"),
       "Alice_Smith"},
      {absl::ResourceExhaustedError(
           "re-embedding 81 image(s) would exceed the limit of 100 per day "
           "(evaluation.max_reembed_images_per_day): 40 already"),
       "81"},
  };
  for (const Case& c : cases) {
    const absl::Status sent = VendorStatus(c.local);
    EXPECT_EQ(sent.code(), c.local.code());
    EXPECT_TRUE(InCatalogue(std::string(sent.message()))) << sent;
    EXPECT_THAT(std::string(sent.message()), Not(HasSubstr(c.must_not_leak))) << c.local;
  }
  EXPECT_EQ(
      VendorStatus(absl::ResourceExhaustedError("privacy budget exhausted: 1 of 2")).message(),
      "privacy budget exhausted for this vendor");
  EXPECT_TRUE(VendorStatus(absl::OkStatus()).ok());
}

TEST(VendorStatusTest, AnyLocalTextBecomesACatalogueTextOfTheSameCode) {
  std::mt19937 rng(99);
  const std::string alphabet = "abcdefghij /._-:'0123456789ABCDEF";
  for (int i = 0; i < 2000; ++i) {
    std::string text(1 + rng() % 120, ' ');
    for (char& ch : text) ch = alphabet[rng() % alphabet.size()];
    const auto code = static_cast<absl::StatusCode>(1 + rng() % 16);
    const absl::Status sent = VendorStatus(absl::Status(code, text));
    ASSERT_EQ(sent.code(), code);
    ASSERT_TRUE(InCatalogue(std::string(sent.message()))) << text << " -> " << sent;
  }
}

TEST(VendorStatusTest, TheCatalogueNamesNoPathAndNoNumberBeyondItsPatterns) {
  for (const std::string& text : CatalogueTexts()) {
    EXPECT_EQ(text.find('/'), std::string::npos) << text;
    const bool pattern = text.find("must match") != std::string::npos;
    if (!pattern) {
      EXPECT_TRUE(std::none_of(text.begin(), text.end(), ::isdigit)) << text;
    }
  }
}

// The service may pass a status through the catalogue again (a re-send to a second caller of
// the same round): a catalogue text maps to itself.
TEST(VendorStatusTest, EveryCatalogueTextMapsToItself) {
  for (const std::string& text : CatalogueTexts()) {
    for (absl::StatusCode code :
         {absl::StatusCode::kInvalidArgument, absl::StatusCode::kFailedPrecondition,
          absl::StatusCode::kResourceExhausted, absl::StatusCode::kPermissionDenied,
          absl::StatusCode::kUnavailable, absl::StatusCode::kInternal}) {
      const absl::Status once = VendorStatus(absl::Status(code, text));
      EXPECT_EQ(VendorStatus(once), once) << text;
    }
  }
}

// The rate-limit refusal: one fixed text, whatever window and counts the local text names, and
// never charged as data-dependent (it counts only the vendor's own calls).
TEST(VendorStatusTest, RateLimitRefusalIsOneFixedTextThatDependsOnNoData) {
  const absl::Status local = absl::ResourceExhaustedError(
      absl::StrCat(kRateLimitPhrase, ": kind=replays limit=60 window=2026-11-28T08:00:00Z+60s"));
  const absl::Status sent = VendorStatus(local);
  EXPECT_EQ(sent.message(), kRateLimitedText);
  EXPECT_TRUE(IsRateLimitRefusal(sent));
  EXPECT_TRUE(InCatalogue(kRateLimitedText));
  EXPECT_FALSE(DependsOnPartnerData(local));
  EXPECT_FALSE(IsRateLimitRefusal(absl::UnavailableError(kRateLimitedText)));
  EXPECT_FALSE(IsRateLimitRefusal(VendorStatus(absl::ResourceExhaustedError("rate limit"))));
}

}  // namespace

}  // namespace fedface::partner
