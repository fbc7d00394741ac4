#include "partner_node/cli/local_engine.h"

#include <cstdlib>

#include "core/common/status_macros.h"
#include "core/package/package_verifier.h"

namespace fedface::partner {

const std::set<std::string>& EngineValueFlags() {
  static const std::set<std::string> flags = {"model",      "vendor-key", "upsample", "workers",
                                              "max-pixels", "max-side",   "backend",  "min-face"};
  return flags;
}

const std::set<std::string>& EngineSwitchFlags() {
  static const std::set<std::string> flags = {"gray", "exact-parity", "json", "help"};
  return flags;
}

const char kEngineFlagsHelp[] = R"(engine flags:
  --model PKG         signed model package folder (verified before use)
  --vendor-key FILE   the vendor public key this partner pinned (default $FEDFACE_VENDOR_KEY)
  --min-face PX       smallest face the default (fast) detector must find, as a box side in
                      pixels of the original photo (default 160; 20..4096): every face the
                      exact path finds at PX or larger is found. Photos under 0.5 MP are
                      searched for smaller faces too (down to 80 px), photos under 0.1 MP
                      with the exact detector. Landmarks and chips use full resolution.
  --exact-parity      face_recognition's exact detector instead (colour HOG, upsample 1, full
                      resolution: same boxes and landmarks; ~8x the CPU per 1080p photo)
  --upsample N        with --exact-parity: HOG upsampling, face_recognition's meaning (default 1;
                      0..4)
  --gray              with --exact-parity: detect on a grayscale copy
  --max-side PX       with --exact-parity: downscale images whose longer side exceeds PX for
                      detection only (0 = off)
  (--upsample, --gray and --max-side imply --exact-parity's manual HOG detector)
  --workers N         worker threads, one network each (default: one per CPU)
  --backend NAME      embedding backend: onednn (fp32, default) | dlib (the reference; always
                      with --exact-parity, --upsample, --gray or --max-side) | onednn-int8
                      (int8, fastest; needs the package's int8 calibration)
  --max-pixels N      refuse images above N pixels before decoding (default 40000000)
  --json              machine-readable output
)";

absl::StatusOr<LocalEngine> LoadLocalEngine(const CliArgs& args, bool need_model) {
  EngineOptions options;
  ASSIGN_OR_RETURN(long upsample, args.GetInt("upsample", 1, 0, 4));
  ASSIGN_OR_RETURN(long workers, args.GetInt("workers", 0, 0, 256));
  ASSIGN_OR_RETURN(long max_side, args.GetInt("max-side", 0, 0, 1 << 16));
  ASSIGN_OR_RETURN(long max_pixels,
                   args.GetInt("max-pixels", options.decode.max_pixels, 1, 1L << 40));
  ASSIGN_OR_RETURN(long min_face, args.GetInt("min-face", kDefaultMinFacePx, 20, 4096));
  const bool manual =
      args.Has("exact-parity") || args.Has("upsample") || args.Has("gray") || args.Has("max-side");
  if (manual && args.Has("min-face")) {
    return absl::InvalidArgumentError(
        "--min-face sets the fast default detector; it cannot be combined with --exact-parity, "
        "--upsample, --gray or --max-side");
  }
  if (manual) {
    options.detector = DetectorOptions{};  // face_recognition's exact detector
    options.detector.upsample = static_cast<int>(upsample);
    options.detector.grayscale = args.Has("gray");
    options.detector.max_side = static_cast<int>(max_side);
  } else {
    options.detector = FastDetectorOptions();
    options.detector.min_face_px = static_cast<int>(min_face);
  }
  options.workers = static_cast<int>(workers);
  options.decode.max_pixels = max_pixels;
  ASSIGN_OR_RETURN(
      EmbeddingBackend backend,
      ParseEmbeddingBackend(
          args.GetOr("backend", std::string(EmbeddingBackendName(kDefaultEmbeddingBackend))),
          "--backend"));
  if (manual && args.Has("backend") && backend != EmbeddingBackend::kDlib) {
    return absl::InvalidArgumentError(
        "--exact-parity (and --upsample, --gray, --max-side) embeds with dlib, the reference; "
        "--backend can only be dlib with them");
  }
  options.backend = manual ? EmbeddingBackend::kDlib : backend;

  LocalEngine out;
  std::unique_ptr<FaceResNet> net;
  if (auto model = args.Get("model")) {
    std::string key = args.GetOr("vendor-key", "");
    if (key.empty() && std::getenv("FEDFACE_VENDOR_KEY")) key = std::getenv("FEDFACE_VENDOR_KEY");
    if (key.empty()) {
      return absl::InvalidArgumentError(
          "no pinned vendor key: give --vendor-key FILE or set FEDFACE_VENDOR_KEY");
    }
    ASSIGN_OR_RETURN(LoadedModel loaded, LoadVerifiedModel(*model, key, options.backend));
    net = std::move(loaded.net);
    out.manifest = loaded.manifest;
    out.has_model = true;
    out.self_test_max_distance = loaded.self_test_max_distance;
  } else if (need_model) {
    return absl::InvalidArgumentError("--model PKG is required");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<FaceEngine> engine, FaceEngine::Create(options, std::move(net)));
  out.engine = std::move(engine);
  return out;
}

}  // namespace fedface::partner
