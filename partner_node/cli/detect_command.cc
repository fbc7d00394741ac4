// partner_node detect: faces and 68 landmarks per image, in original pixels.
#include <iostream>

#include <nlohmann/json.hpp>

#include "partner_node/cli/command.h"
#include "partner_node/cli/local_engine.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] = "usage: partner_node detect [--model PKG --vendor-key FILE] "
                          "[--min-face PX | --exact-parity] [--json] IMAGE...\n\n"
                          "Boxes are left, top, right, bottom in original pixels (dlib's "
                          "rectangle clipped to the image).\n\n";

nlohmann::json FaceJson(const AnalyzedFace& face) {
  nlohmann::json landmarks = nlohmann::json::array();
  for (const cv::Point& p : face.landmarks) landmarks.push_back({p.x, p.y});
  return {{"box",
           {{"left", face.box.left},
            {"top", face.box.top},
            {"right", face.box.right},
            {"bottom", face.box.bottom}}},
          {"confidence", face.box.confidence},
          {"landmarks", landmarks}};
}

}  // namespace

int RunDetect(const std::vector<std::string>& raw) {
  absl::StatusOr<CliArgs> args = CliArgs::Parse(raw, EngineValueFlags(), EngineSwitchFlags());
  if (!args.ok() || args->Has("help") || args->positionals().empty()) {
    if (!args.ok()) std::cerr << "partner_node detect: " << args.status().message() << "\n";
    (args.ok() && args->Has("help") ? std::cout : std::cerr) << kUsage << kEngineFlagsHelp;
    return args.ok() && args->Has("help") ? 0 : 2;
  }
  absl::StatusOr<LocalEngine> local = LoadLocalEngine(*args, /*need_model=*/false);
  if (!local.ok()) {
    std::cerr << "partner_node detect: " << local.status().message() << "\n";
    return 1;
  }
  ProcessOptions options;
  options.embed = false;
  std::vector<ImageAnalysis> results = local->engine->ProcessFiles(args->positionals(), options);
  int failures = 0;
  nlohmann::json images = nlohmann::json::array();
  for (const ImageAnalysis& r : results) {
    nlohmann::json image = {{"file", r.source}};
    if (!r.status.ok()) {
      ++failures;
      std::cerr << "partner_node detect: " << r.status.message() << "\n";
      image["error"] = std::string(r.status.message());
    } else {
      image["width"] = r.width;
      image["height"] = r.height;
      image["faces"] = nlohmann::json::array();
      for (const AnalyzedFace& f : r.faces) image["faces"].push_back(FaceJson(f));
    }
    if (!args->Has("json") && r.status.ok()) {
      std::cout << r.source << ": " << r.faces.size() << " face(s)";
      for (const AnalyzedFace& f : r.faces) {
        std::cout << "  [" << f.box.left << "," << f.box.top << "," << f.box.right << ","
                  << f.box.bottom << "]";
      }
      std::cout << "\n";
    }
    images.push_back(std::move(image));
  }
  if (args->Has("json")) std::cout << nlohmann::json{{"images", images}}.dump(2) << "\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace fedface::partner
