#include "partner_node/enroll/enroll_config.h"

#include "absl/strings/str_cat.h"
#include "core/common/status_macros.h"
#include "core/package/ed25519.h"
#include "partner_node/model_cache/model_cache.h"

namespace fedface::partner {

// engine.max_pixels' default is written out in gallery_config_keys.h (kept free of engine headers
// so that the configuration schema compiles without them); it must stay the decoder's default.
static_assert(kDefaultMaxPixels == DecodeLimits{}.max_pixels);
static_assert(kDefaultEngineMinFacePx == kDefaultMinFacePx);

EngineOptions EngineOptionsFromConfig(const Config& config) {
  EngineOptions options;
  options.workers = static_cast<int>(config.GetInt("engine.workers"));
  if (config.GetBool("engine.exact_parity")) {
    options.detector = DetectorOptions{};
    options.detector.upsample = static_cast<int>(config.GetInt("engine.upsample"));
    options.detector.grayscale = config.GetBool("engine.grayscale");
    options.detector.max_side = static_cast<int>(config.GetInt("engine.max_side"));
  } else {
    options.detector = FastDetectorOptions();
    options.detector.min_face_px = static_cast<int>(config.GetInt("engine.min_face_px"));
  }
  options.decode.max_pixels = config.GetInt("engine.max_pixels");
  // Config::Load has already refused any other value (the key's one_of). Exact parity means
  // face_recognition's numbers, so dlib's network too.
  options.backend =
      config.GetBool("engine.exact_parity")
          ? EmbeddingBackend::kDlib
          : ParseEmbeddingBackend(config.GetString("engine.backend"), "engine.backend")
                .value_or(kDefaultEmbeddingBackend);
  return options;
}

absl::StatusOr<std::string> ActiveModelVersion(const Config& config) {
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config.GetPath("model_cache.dir")));
  return cache.ActiveVersion();
}

absl::StatusOr<ActiveModelEngine> LoadActiveModelEngine(const Config& config) {
  ASSIGN_OR_RETURN(Ed25519PublicKey pinned_key,
                   Ed25519PublicKey::LoadPem(config.GetPath("vendor.signing_key")));
  ASSIGN_OR_RETURN(ModelCache cache, ModelCache::Open(config.GetPath("model_cache.dir")));
  const EngineOptions options = EngineOptionsFromConfig(config);
  ASSIGN_OR_RETURN(LoadedModel model, cache.LoadActive(pinned_key, options.backend));
  ASSIGN_OR_RETURN(std::unique_ptr<FaceEngine> engine,
                   FaceEngine::Create(options, std::move(model.net)));
  ActiveModelEngine out;
  out.engine = std::move(engine);
  out.manifest = std::move(model.manifest);
  out.self_test_max_distance = model.self_test_max_distance;
  return out;
}

}  // namespace fedface::partner
