// The coordinator's settings from the vendor's config: partner entries, defaults, the checks the
// schema cannot express, and the round id rules.
#include "model_vendor/coordinator/round_settings.h"

#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "model_vendor/cli/vendor_config.h"
#include "tests/support/test_env.h"

namespace fedface::vendor {
namespace {

class RoundSettingsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fedface::testing::MakeTempDir("round-settings");
    for (const char* f : {"ca.crt", "vendor.crt", "vendor.key", "client.crt"}) {
      std::ofstream(dir_ + "/" + f) << "x";
    }
  }
  absl::StatusOr<CoordinatorSettings> Load(const std::string& coordinator_section) {
    const std::string yaml = absl::StrCat(
        "server:\n  ca_cert: ca.crt\n  cert: vendor.crt\n  key: vendor.key\n"
        "  partners: [acme]\nregistry:\n  dir: .\ncoordinator:\n",
        coordinator_section);
    ASSIGN_OR_RETURN(Config config, Config::Parse(yaml, "vendor.yaml", dir_, VendorConfigSchema()));
    return LoadCoordinatorSettings(config);
  }
  std::string dir_;
};

TEST(PartnerEntryTest, ReadsNameAddressAndCertificateName) {
  absl::StatusOr<PartnerEndpoint> p = ParsePartnerEntry("acme  10.0.0.5:7444\tnode.acme.example");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "acme");
  EXPECT_EQ(p->address, "10.0.0.5:7444");
  EXPECT_EQ(p->certificate_name, "node.acme.example");
}

TEST(PartnerEntryTest, CertificateNameDefaultsToTheHost) {
  EXPECT_EQ(ParsePartnerEntry("acme localhost:7444")->certificate_name, "localhost");
  EXPECT_EQ(ParsePartnerEntry("v6 [::1]:7444")->certificate_name, "::1");
}

TEST(PartnerEntryTest, RefusesMalformedEntriesNamingThem) {
  for (const char* bad :
       {"acme", "acme 127.0.0.1", "acme 127.0.0.1:0", "acme 127.0.0.1:99999", "acme :7444",
        "ac/me 127.0.0.1:7444", "acme host:port", "a b:1 c d", ""}) {
    absl::StatusOr<PartnerEndpoint> p = ParsePartnerEntry(bad);
    EXPECT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("coordinator.partners entry"), std::string::npos);
  }
}

TEST_F(RoundSettingsTest, FillsDefaultsAndFallsBackToTheServerCaOnly) {
  absl::StatusOr<CoordinatorSettings> s =
      Load("  partners:\n    - acme 127.0.0.1:7001\n    - globex 127.0.0.1:7002\n");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->partners.size(), 2u);
  EXPECT_EQ(s->partners[1].name, "globex");
  EXPECT_EQ(s->policy.quorum, 2);
  EXPECT_EQ(s->policy.max_attempts, 4);
  EXPECT_EQ(s->policy.call_deadline, absl::Seconds(900));
  EXPECT_EQ(s->policy.initial_backoff, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(s->target_fmr, 1e-3);
  EXPECT_EQ(s->tls.ca_cert, dir_ + "/ca.crt");
  // The registry's server certificate is never the coordinator's client certificate.
  EXPECT_EQ(s->tls.cert, "");
  EXPECT_EQ(s->tls.key, "");
  EXPECT_EQ(s->rounds_db, dir_ + "/rounds.db");
}

TEST_F(RoundSettingsTest, ReadsEveryCoordinatorKey) {
  absl::StatusOr<CoordinatorSettings> s = Load(
      "  partners: ['acme 127.0.0.1:7001']\n  client_cert: client.crt\n  quorum: 1\n"
      "  call_deadline_seconds: 5\n  round_deadline_seconds: 60\n  max_attempts: 2\n"
      "  initial_backoff_ms: 50\n  max_backoff_ms: 200\n  target_fmr: 1e-4\n"
      "  non_mated_sample_size: 1000\n  rounds_db: db/r.db\n");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->tls.cert, dir_ + "/client.crt");
  EXPECT_EQ(s->policy.quorum, 1);
  EXPECT_EQ(s->policy.call_deadline, absl::Seconds(5));
  EXPECT_EQ(s->policy.round_deadline, absl::Seconds(60));
  EXPECT_EQ(s->policy.max_attempts, 2);
  EXPECT_EQ(s->policy.max_backoff, absl::Milliseconds(200));
  EXPECT_DOUBLE_EQ(s->target_fmr, 1e-4);
  EXPECT_EQ(s->non_mated_sample_size, 1000u);
  EXPECT_EQ(s->rounds_db, dir_ + "/db/r.db");
}

TEST_F(RoundSettingsTest, RefusesSettingsNoRoundCouldUse) {
  EXPECT_NE(Load("  quorum: 1\n").status().message().find("coordinator.partners is empty"),
            std::string::npos);
  EXPECT_NE(Load("  partners: ['a 127.0.0.1:1', 'a 127.0.0.1:2']\n  quorum: 1\n")
                .status()
                .message()
                .find("names 'a' twice"),
            std::string::npos);
  EXPECT_NE(Load("  partners: ['a 127.0.0.1:1']\n  quorum: 2\n")
                .status()
                .message()
                .find("quorum is 2 but only 1"),
            std::string::npos);
  for (const char* fmr : {"0", "1", "abc", "1e-3x", "-0.1", "nan"}) {
    absl::StatusOr<CoordinatorSettings> s = Load(
        absl::StrCat("  partners: ['a 127.0.0.1:1']\n  quorum: 1\n  target_fmr: '", fmr, "'\n"));
    EXPECT_NE(s.status().message().find("coordinator.target_fmr"), std::string::npos) << fmr;
  }
  EXPECT_NE(Load("  partners: ['a 127.0.0.1:1']\n  quorom: 1\n")
                .status()
                .message()
                .find("did you mean 'coordinator.quorum'"),
            std::string::npos);
}

TEST(RoundIdTest, NewIdsAreValidAndDistinct) {
  const std::string a = NewRoundId(), b = NewRoundId();
  EXPECT_TRUE(CheckRoundId(a).ok()) << a;
  EXPECT_NE(a, b);
  EXPECT_EQ(a[0], 'r');
}

TEST(RoundIdTest, RefusesIdsPartnersWouldRefuse) {
  EXPECT_TRUE(CheckRoundId("round_1-A").ok());
  for (const std::string& bad : {std::string(), std::string(65, 'a'), std::string("a b"),
                                 std::string("a/b"), std::string("r\xc3\xa9")}) {
    EXPECT_FALSE(CheckRoundId(bad).ok()) << bad;
  }
}

TEST(RoundIdTest, TheSeedIsAFunctionOfTheRoundIdSoARerunSendsTheSameRequest) {
  EXPECT_EQ(RoundSeed("round-1"), RoundSeed("round-1"));
  EXPECT_NE(RoundSeed("round-1"), RoundSeed("round-2"));
  RoundRequest r{"round-1", "1.0.0", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION,
                 RoundSeed("round-1"), 500};
  EXPECT_EQ(ToWireRequest(r).SerializeAsString(), ToWireRequest(r).SerializeAsString());
  EXPECT_EQ(ToWireRequest(r).seed(), RoundSeed("round-1"));
  EXPECT_EQ(ToWireRequest(r).non_mated_sample_size(), 500u);
}

}  // namespace
}  // namespace fedface::vendor
