#include "partner_node/serve/serving_model.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/package/ed25519.h"
#include "core/package/package_verifier.h"
#include "partner_node/model_cache/model_cache.h"
#include "partner_node/serve/serve_log.h"

namespace fedface::partner {

absl::StatusOr<double> MeasureEmbeddingThroughput(FaceEngine& engine,
                                                  const std::string& package_dir,
                                                  const std::string& signing_key_path,
                                                  int min_chips) {
  ASSIGN_OR_RETURN(Ed25519PublicKey key, Ed25519PublicKey::LoadPem(signing_key_path));
  ASSIGN_OR_RETURN(VerifiedPackage package, VerifyModelPackage(package_dir, key));
  if (package.chips.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(package_dir, ": no self-test chips"));
  }
  std::vector<cv::Mat> chips;
  while (static_cast<int>(chips.size()) < min_chips) {
    for (const cv::Mat& chip : package.chips) chips.push_back(chip);
  }
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<Embedding>> embedded = engine.EmbedChips(chips);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!embedded.ok()) return embedded.status();
  if (!(seconds > 0)) return absl::InternalError("throughput: no time elapsed");
  return static_cast<double>(embedded->size()) / seconds;
}

absl::StatusOr<std::shared_ptr<const LoadedServingModel>> LoadServingModel(
    const Config& config, const EngineOptions& engine_options, const std::string& version,
    std::ostream* log) {
  const std::string signing_key = config.GetPath("vendor.signing_key");
  ASSIGN_OR_RETURN(Ed25519PublicKey key, Ed25519PublicKey::LoadPem(signing_key));
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config.GetPath("model_cache.dir")));
  ASSIGN_OR_RETURN(LoadedModel loaded, cache.LoadInstalled(version, key, engine_options.backend));
  auto out = std::make_shared<LoadedServingModel>();
  out->version = loaded.manifest.version;
  out->manifest = loaded.manifest;
  ASSIGN_OR_RETURN(std::unique_ptr<FaceEngine> engine,
                   FaceEngine::Create(engine_options, std::move(loaded.net)));
  out->engine = std::move(engine);
  absl::StatusOr<double> rate = MeasureEmbeddingThroughput(
      *out->engine, cache.VersionDir(out->version), signing_key, 4 * out->engine->workers());
  if (rate.ok()) {
    out->embeddings_per_second = *rate;
  } else {
    ServeLog(log, absl::StrCat("model ", version,
                               ": throughput not measured: ", rate.status().message()));
  }
  return std::shared_ptr<const LoadedServingModel>(std::move(out));
}

absl::StatusOr<std::unique_ptr<ServingModel>> ServingModel::Open(
    const Config& config, const EngineOptions& engine_options, std::ostream* log) {
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config.GetPath("model_cache.dir")));
  ASSIGN_OR_RETURN(std::string active, cache.ActiveVersion());
  if (active.empty()) {
    return absl::NotFoundError(
        absl::StrCat(cache.dir(), ": no active model; run `partner_node models pull`"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const LoadedServingModel> loaded,
                   LoadServingModel(config, engine_options, active, log));
  return std::unique_ptr<ServingModel>(new ServingModel(std::move(loaded)));
}

}  // namespace fedface::partner
