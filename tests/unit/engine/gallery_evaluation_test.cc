// Verification on 8 real identities (faceapi-bbt): the engine, the package and the metric
// library together must separate the people (ROC AUC above 0.95), on every embedding backend
// (the figures printed per backend are the accuracy comparison).
#include <gtest/gtest.h>

#include <algorithm>

#include "core/metrics/verification_metrics.h"
#include "core/package/package_verifier.h"
#include "partner_node/evaluation/labelled_images.h"
#include "tests/support/test_env.h"

namespace fedface {
namespace {

class GalleryEvaluationTest : public ::testing::TestWithParam<EmbeddingBackend> {};

TEST_P(GalleryEvaluationTest, SeparatesTheEightBbtIdentities) {
  const std::string data = testing::DatasetsDir();
  FEDFACE_SKIP_IF_MISSING(data, "../shared/datasets");
  FEDFACE_SKIP_IF_MISSING(testing::TestPackageDir(), "the test package (scripts/fetch_model.sh)");
  auto model =
      LoadVerifiedModel(testing::TestPackageDir(), testing::TestVendorKey() + ".pub", GetParam());
  ASSERT_TRUE(model.ok()) << model.status();
  EngineOptions options;
  options.detector.upsample = 1;
  auto engine = FaceEngine::Create(options, std::move(model->net));
  ASSERT_TRUE(engine.ok()) << engine.status();

  const std::string gallery = data + "/faceapi-bbt/gallery";
  auto images = partner::ScanGalleryFolder(gallery);
  ASSERT_TRUE(images.ok()) << images.status();
  ASSERT_EQ(images->size(), 40u);
  partner::EmbedLabelledImages(**engine, gallery, *images);
  size_t fte = 0;
  for (const auto& image : *images) fte += image.enrolled ? 0 : 1;
  partner::ComparisonSet set = partner::CompareAllPairs(*images);
  auto scores = metrics::ComparisonScores::FromDistances(set.mated, set.non_mated);
  ASSERT_TRUE(scores.ok());
  metrics::VerificationReport report = metrics::ComputeVerificationReport(*scores, 0.6);

  std::cout << EmbeddingBackendName(GetParam()) << " bbt: " << images->size() << " images, FTE "
            << fte << ", " << report.mated_count << " mated / " << report.non_mated_count
            << " non-mated, AUC " << *report.roc_auc << ", EER " << report.eer->eer << " at "
            << report.eer->threshold << ", accuracy@0.6 " << *report.accuracy << "\n";
  EXPECT_LE(fte, 4u);
  EXPECT_GT(*report.roc_auc, 0.95);
  // 700 non-mated comparisons support FMR 1e-2 but not 1e-3.
  EXPECT_EQ(report.fnmr_at_fmr[1].availability, metrics::Availability::kInsufficientNonMated);
}

INSTANTIATE_TEST_SUITE_P(Backends, GalleryEvaluationTest,
                         ::testing::Values(EmbeddingBackend::kDlib, EmbeddingBackend::kOneDnn,
                                           EmbeddingBackend::kOneDnnInt8),
                         [](const auto& info) {
                           std::string name(EmbeddingBackendName(info.param));
                           std::replace(name.begin(), name.end(), '-', '_');  // gtest: [A-Za-z0-9_]
                           return name;
                         });

}  // namespace
}  // namespace fedface
