// The three forms of a round's report: report.json validates against docs/report_schema.json
// (python3-jsonschema), report.html renders in headless Chromium without errors and fetches
// nothing (a screenshot is kept under the build folder), and the terminal table carries every
// row and reason.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model_vendor/coordinator/coordinator_files.h"
#include "model_vendor/coordinator/pooled_metrics.h"
#include "model_vendor/coordinator/report_html.h"
#include "model_vendor/coordinator/report_json.h"
#include "model_vendor/coordinator/report_table.h"
#include "tests/support/test_env.h"
#include "tests/unit/coordinator/release_fixture.h"
#include "tests/unit/coordinator/report_checks.h"

namespace fedface::vendor {
namespace {

using fedface::testing::Env;
using testing::MakeKMinimumRelease;
using testing::MakeRelease;
using testing::NormalDistances;
using testing::TestRequest;

// Where reports and screenshots of these tests are kept for a person to look at.
std::string ArtefactDir(const std::string& name) {
  const std::string dir =
      absl::StrCat(Env("FEDFACE_BINARY_DIR"), "/test_artifacts/coordinator/", name);
  std::filesystem::create_directories(dir);
  return dir;
}

// A round with one partner of every kind: three contributed (one with DP on), one withheld by
// its k-minimum, one unreachable, one refused on its privacy budget; partner texts that need
// escaping.
// The first `layout_two` contributing partners release over bin layout 2 (issue 12).
RoundRecord DemoRound(fedface::v1::EvaluationProtocol protocol, int quorum, int layout_two = 0) {
  RoundRecord rec;
  rec.request = TestRequest("r20240501T120000Z-0a1b2c3d", protocol);
  rec.quorum = quorum;
  rec.target_fmr = 1e-3;
  rec.started_at = "2024-05-01T12:00:00Z";
  rec.finished_at = "2024-05-01T12:04:10Z";
  std::mt19937_64 rng(99);
  const double shift[] = {0.0, 0.05, -0.03};
  const char* names[] = {"acme", "globex", "initech"};
  for (int p = 0; p < 3; ++p) {
    PartnerOutcome o;
    o.partner = {names[p], absl::StrCat("127.0.0.1:70", p), "localhost"};
    o.status = PartnerStatus::kContributed;
    o.grpc_code = "OK";
    o.attempts = p == 1 ? 2 : 1;
    o.elapsed_ms = 2000 + 700 * p;
    o.release = MakeRelease(
        rec.request,
        *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 300, 0.42 + shift[p], 0.08)),
        *metrics::ScoreHistogram::FromDistances(NormalDistances(rng, 5000, 0.92, 0.11)));
    if (p < layout_two) {
      o.release = testing::MakeLayoutTwoRelease(rec.request, NormalDistances(rng, 3000, 0.42, 0.08),
                                                NormalDistances(rng, 50000, 0.92, 0.11), {}, rng);
    } else if (p == 2) {
      o.release->mutable_privacy()->set_differential_privacy(true);
      o.release->mutable_privacy()->set_epsilon(1.0);
      o.release->mutable_privacy()->set_contribution_bound(10);
    }
    o.egress = {o.attempts, 24L * o.attempts, 1, static_cast<int64_t>(o.release->ByteSizeLong())};
    rec.outcomes.push_back(o);
  }
  PartnerOutcome tiny;
  tiny.partner = {"tiny-bank", "127.0.0.1:7010", "localhost"};
  tiny.status = PartnerStatus::kWithheld;
  tiny.reason =
      "withheld by the partner's k-minimum rule: its gallery has fewer than k subjects, so it "
      "released nothing";
  tiny.grpc_code = "OK";
  tiny.attempts = 1;
  tiny.release = MakeKMinimumRelease(rec.request);
  tiny.egress = {1, 24, 1, static_cast<int64_t>(tiny.release->ByteSizeLong())};
  rec.outcomes.push_back(tiny);
  PartnerOutcome down;
  down.partner = {"umbrella", "127.0.0.1:7011", "localhost"};
  down.status = PartnerStatus::kUnreachable;
  down.reason = "unreachable after 4 attempts: failed to connect to all addresses <script>";
  down.grpc_code = "UNAVAILABLE";
  down.attempts = 4;
  down.egress = {4, 96, 0, 0};
  rec.outcomes.push_back(down);
  PartnerOutcome broke;
  broke.partner = {"hooli", "127.0.0.1:7012", "localhost"};
  broke.status = PartnerStatus::kRefused;
  broke.reason =
      "refused: the vendor's privacy budget at this partner cannot pay for this release "
      "(RESOURCE_EXHAUSTED: budget 0.5 < 1 & \"more\")";
  broke.grpc_code = "RESOURCE_EXHAUSTED";
  broke.attempts = 1;
  broke.egress = {1, 24, 0, 0};
  rec.outcomes.push_back(broke);
  return rec;
}

::testing::AssertionResult ValidatesAgainstSchema(const std::string& json_path) {
  const std::string errors = testing::SchemaErrors(json_path);
  if (errors.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << errors;
}

TEST(ReportJsonTest, ValidatesAgainstTheDocumentedSchemaForEveryKindOfRound) {
  struct Case {
    const char* name;
    fedface::v1::EvaluationProtocol protocol;
    int quorum;
    int layout_two = 0;
  } cases[] = {{"verification", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2},
               {"identification", fedface::v1::EVALUATION_PROTOCOL_IDENTIFICATION, 3},
               {"quorum_not_met", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 5},
               {"layout_2", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2, 3},
               {"mixed_layouts", fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2, 1}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const RoundReport report = BuildRoundReport(DemoRound(c.protocol, c.quorum, c.layout_two));
    absl::StatusOr<ReportFiles> files = WriteReportFiles(report, ArtefactDir(c.name));
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_TRUE(ValidatesAgainstSchema(files->json_path));
  }
  RoundRecord running = DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2);
  running.finished_at.clear();
  running.outcomes.resize(2);
  const std::string dir = ArtefactDir("running");
  ASSERT_TRUE(WriteReportFiles(BuildRoundReport(running), dir).ok());
  EXPECT_TRUE(ValidatesAgainstSchema(dir + "/report.json"));
}

TEST(ReportJsonTest, TheSchemaRejectsAReportThatBreaksItsRules) {
  // Negative control: the validation above can fail.
  const std::string dir = ArtefactDir("broken");
  std::string json = RoundReportJson(
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2)));
  const std::size_t at = json.find("\"status\": \"unreachable\"");
  ASSERT_NE(at, std::string::npos);
  json.replace(at, 24, "\"status\": \"sulking\"    ");
  std::ofstream(dir + "/report.json") << json;
  EXPECT_FALSE(ValidatesAgainstSchema(dir + "/report.json"));
}

TEST(ReportJsonTest, CarriesThePooledFiguresAndEveryReason) {
  const RoundReport report =
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2));
  const std::string json = RoundReportJson(report);
  EXPECT_NE(json.find("\"state\": \"complete\""), std::string::npos);
  EXPECT_NE(json.find("\"partners_contributed\": 3"), std::string::npos);
  EXPECT_NE(json.find("k-minimum"), std::string::npos);
  EXPECT_NE(json.find("\"suppression\": \"cohort_below_k\""), std::string::npos);
  EXPECT_NE(json.find("unreachable after 4 attempts"), std::string::npos);
  EXPECT_NE(json.find("\"seed\": \"42\""), std::string::npos);
}

TEST(ReportHtmlTest, IsSelfContainedAndEscapesEveryTextFromPartners) {
  const std::string html = RoundReportHtml(
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2)));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("&amp; &quot;more&quot;"), std::string::npos);
  for (const char* fetch : {"src=", "href=", "url(", "@import", "https://"}) {
    EXPECT_EQ(html.find(fetch), std::string::npos) << fetch;
  }
  // Every "http://" is an SVG namespace, never something to fetch.
  std::size_t pos = 0, http = 0, svg_ns = 0;
  while ((pos = html.find("http://", pos)) != std::string::npos) {
    ++http;
    if (html.compare(pos, 26, "http://www.w3.org/2000/svg") == 0) ++svg_ns;
    ++pos;
  }
  EXPECT_EQ(http, svg_ns);
  EXPECT_GE(svg_ns, 4u);  // DET, pooled histogram, partner histograms, egress bars
  EXPECT_NE(html.find("Recommended global threshold"), std::string::npos);
  EXPECT_NE(html.find("What the partners sent"), std::string::npos);
  EXPECT_NE(html.find("<polyline"), std::string::npos);
  // initech added DP noise: the reader is told what that does to the pooled rates.
  EXPECT_NE(html.find("1 of the 3 pooled partners added differential-privacy noise"),
            std::string::npos);
}

TEST(ReportHtmlTest, RendersInHeadlessChromiumWithoutErrors) {
  if (!testing::HaveChromium())
    FEDFACE_SKIP_OR_FAIL("chromium is absent (scripts/setup.sh installs it)");
  const std::string dir = ArtefactDir("chromium");
  absl::StatusOr<ReportFiles> files = WriteReportFiles(
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2)), dir);
  ASSERT_TRUE(files.ok());
  const testing::ChromiumRender r =
      testing::RenderWithChromium(files->html_path, dir + "/report.png");
  EXPECT_EQ(r.exit_code, 0) << r.log;
  // Console errors (a blocked fetch, a CSP violation, a parse error) appear as CONSOLE lines.
  EXPECT_EQ(r.log.find(":CONSOLE("), std::string::npos) << r.log;
  EXPECT_EQ(r.width, 1200u);
  EXPECT_EQ(r.height, 2000u);
  // A blank page compresses to a few kilobytes; charts, tables and text do not.
  EXPECT_GT(r.png.size(), 60u * 1024) << "screenshot suspiciously small: " << dir;
}

TEST(ReportTableTest, ShowsThePooledRowEveryPartnerAndWhyValuesAreMissing) {
  const std::string table = RoundReportTable(
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 2)));
  for (const char* want :
       {"POOLED", "3 partners", "acme", "globex", "initech", "tiny-bank", "withheld[", "umbrella",
        "unreachable[", "hooli", "refused[", "FNMR @ FMR 1e-03", "EER",
        "Recommended global threshold for FMR 0.001: distance <= ", "Why values are missing:",
        "k-minimum", "privacy budget", "not pooled"}) {
    EXPECT_NE(table.find(want), std::string::npos) << want << "\n" << table;
  }
  for (char c : table) EXPECT_TRUE(c == '\n' || (c >= ' ' && c <= '~')) << int(c);
}

TEST(ReportTableTest, SaysWhenTheQuorumIsNotMet) {
  const std::string table = RoundReportTable(
      BuildRoundReport(DemoRound(fedface::v1::EVALUATION_PROTOCOL_VERIFICATION, 4)));
  EXPECT_NE(table.find("QUORUM NOT MET: 3 of 6 partners contributed (quorum 4)"), std::string::npos)
      << table;
  EXPECT_NE(table.find("not available"), std::string::npos) << table;
}

}  // namespace
}  // namespace fedface::vendor
