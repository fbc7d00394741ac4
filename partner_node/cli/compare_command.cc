// partner_node compare: distance between the largest faces of two images, and the decision at
// the package's threshold.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "partner_node/cli/command.h"
#include "partner_node/cli/local_engine.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node compare --model PKG --vendor-key FILE [--json] IMAGE_A IMAGE_B\n\n";

}  // namespace

int RunCompare(const std::vector<std::string>& raw) {
  absl::StatusOr<CliArgs> args = CliArgs::Parse(raw, EngineValueFlags(), EngineSwitchFlags());
  if (!args.ok() || args->Has("help") || args->positionals().size() != 2) {
    if (!args.ok()) std::cerr << "partner_node compare: " << args.status().message() << "\n";
    if (args.ok() && !args->Has("help")) std::cerr << "partner_node compare: needs two images\n";
    (args.ok() && args->Has("help") ? std::cout : std::cerr) << kUsage << kEngineFlagsHelp;
    return args.ok() && args->Has("help") ? 0 : 2;
  }
  absl::StatusOr<LocalEngine> local = LoadLocalEngine(*args, /*need_model=*/true);
  if (!local.ok()) {
    std::cerr << "partner_node compare: " << local.status().message() << "\n";
    return 1;
  }
  ProcessOptions options;
  options.largest_face_only = true;
  std::vector<ImageAnalysis> r = local->engine->ProcessFiles(args->positionals(), options);
  for (const ImageAnalysis& a : r) {
    if (!a.status.ok()) {
      std::cerr << "partner_node compare: " << a.status.message() << "\n";
      return 1;
    }
    if (a.faces.empty()) {
      std::cerr << "partner_node compare: " << a.source << ": no face found\n";
      return 1;
    }
  }
  const double threshold = local->manifest.distance.default_threshold;
  const float distance = EuclideanDistance(r[0].embeddings[0], r[1].embeddings[0]);
  const bool match = distance <= threshold;
  if (args->Has("json")) {
    std::cout << nlohmann::json{{"image_a", r[0].source},
                                {"image_b", r[1].source},
                                {"distance", distance},
                                {"threshold", threshold},
                                {"match", match},
                                {"model", local->manifest.model_id + " " + local->manifest.version}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << std::fixed << std::setprecision(4) << "distance " << distance << " -> "
              << (match ? "same person" : "different people") << " (threshold " << threshold
              << ")\n";
  }
  return 0;
}

}  // namespace fedface::partner
