// partner_node evaluate: a local verification report over a labelled pair list or a gallery
// folder. Runs on the partner's machine; its output (which may name files) stays there.
#include <chrono>
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "core/metrics/verification_metrics.h"
#include "partner_node/cli/command.h"
#include "partner_node/evaluation/labelled_images.h"
#include "partner_node/cli/local_engine.h"

namespace fedface::partner {
namespace {

constexpr char kUsage[] =
    "usage: partner_node evaluate --model PKG --vendor-key FILE --images DIR --pairs FILE [--json]\n"
    "       partner_node evaluate --model PKG --vendor-key FILE --gallery DIR [--json]\n\n"
    "  --pairs FILE   CSV with header file_x,file_y,Decision (Yes/No) or LFW pairs.txt;\n"
    "                 paths relative to --images DIR\n"
    "  --gallery DIR  folder tree DIR/<subject>/<images>; every pair is compared\n"
    "                 (mated = same subject)\n\n";

nlohmann::json OptionalNumber(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json SummaryJson(const std::optional<metrics::DistanceSummary>& s) {
  if (!s) return nullptr;
  return {{"count", s->count}, {"min", s->min},   {"p5", s->p5},  {"median", s->median},
          {"mean", s->mean},   {"p95", s->p95},   {"max", s->max}};
}

nlohmann::json ReportJson(const metrics::VerificationReport& r) {
  nlohmann::json fnmr = nlohmann::json::array();
  for (const metrics::FnmrAtFmr& f : r.fnmr_at_fmr) {
    nlohmann::json row = {{"target_fmr", f.target_fmr}};
    if (f.availability == metrics::Availability::kAvailable) {
      row["fnmr"] = f.point->fnmr;
      row["threshold"] = f.point->threshold;
      row["achieved_fmr"] = f.point->fmr;
    } else {
      row["withheld"] = metrics::AvailabilityName(f.availability);
      row["non_mated_needed"] = f.non_mated_needed;
    }
    fnmr.push_back(row);
  }
  return {{"mated_comparisons", r.mated_count},
          {"non_mated_comparisons", r.non_mated_count},
          {"threshold", r.threshold},
          {"accuracy", OptionalNumber(r.accuracy)},
          {"fmr_at_threshold", OptionalNumber(r.at_threshold.fmr)},
          {"fnmr_at_threshold", OptionalNumber(r.at_threshold.fnmr)},
          {"eer", r.eer ? nlohmann::json{{"rate", r.eer->eer}, {"threshold", r.eer->threshold}}
                        : nlohmann::json(nullptr)},
          {"roc_auc", OptionalNumber(r.roc_auc)},
          {"fnmr_at_fmr", fnmr},
          {"mated_distances", SummaryJson(r.mated_summary)},
          {"non_mated_distances", SummaryJson(r.non_mated_summary)}};
}

std::string Rate(const std::optional<double>& v) {
  if (!v) return "n/a";
  std::ostringstream out;
  out << std::fixed << std::setprecision(4) << *v;
  return out.str();
}

void PrintText(const nlohmann::json& j, const metrics::VerificationReport& r) {
  std::cout << "model            " << j["model"].get<std::string>() << "\n"
            << "images           " << j["images"] << " (failures to enrol " << j["failures_to_enrol"]
            << ")\n"
            << "comparisons      " << r.mated_count << " mated, " << r.non_mated_count
            << " non-mated";
  if (j.contains("pairs")) std::cout << " (" << j["pairs"]["skipped_fte"] << " pairs skipped)";
  std::cout << "\naccuracy @ " << r.threshold << "   " << Rate(r.accuracy) << "  (FMR "
            << Rate(r.at_threshold.fmr) << ", FNMR " << Rate(r.at_threshold.fnmr) << ")\n"
            << "EER              " << (r.eer ? Rate(r.eer->eer) : "n/a");
  if (r.eer) std::cout << " at threshold " << Rate(r.eer->threshold);
  std::cout << "\nROC AUC          " << Rate(r.roc_auc) << "\n";
  for (const metrics::FnmrAtFmr& f : r.fnmr_at_fmr) {
    std::cout << "FNMR @ FMR " << std::setw(6) << f.target_fmr << " ";
    if (f.availability == metrics::Availability::kAvailable) {
      std::cout << Rate(f.point->fnmr) << " at threshold " << Rate(f.point->threshold) << "\n";
    } else {
      std::cout << metrics::AvailabilityName(f.availability) << " (need " << f.non_mated_needed
                << ")\n";
    }
  }
  for (const auto& [label, s] : {std::pair{"mated", r.mated_summary},
                                 std::pair{"non-mated", r.non_mated_summary}}) {
    if (!s) continue;
    std::cout << std::setw(10) << label << " distance  min " << Rate(s->min) << "  median "
              << Rate(s->median) << "  mean " << Rate(s->mean) << "  max " << Rate(s->max) << "\n";
  }
  std::cout << "throughput       " << j["throughput_images_per_s"] << " images/s on "
            << j["workers"] << " workers\n";
}

}  // namespace

int RunEvaluate(const std::vector<std::string>& raw) {
  std::set<std::string> value_flags = EngineValueFlags();
  value_flags.insert({"images", "pairs", "gallery"});
  absl::StatusOr<CliArgs> args = CliArgs::Parse(raw, value_flags, EngineSwitchFlags());
  const bool pairs_mode = args.ok() && args->Has("pairs") && args->Has("images");
  const bool gallery_mode = args.ok() && args->Has("gallery");
  if (!args.ok() || args->Has("help") || pairs_mode == gallery_mode) {
    if (!args.ok()) std::cerr << "partner_node evaluate: " << args.status().message() << "\n";
    else if (!args->Has("help"))
      std::cerr << "partner_node evaluate: give either --images and --pairs, or --gallery\n";
    (args.ok() && args->Has("help") ? std::cout : std::cerr) << kUsage << kEngineFlagsHelp;
    return args.ok() && args->Has("help") ? 0 : 2;
  }
  auto fail = [](const absl::Status& s) {
    std::cerr << "partner_node evaluate: " << s.message() << "\n";
    return 1;
  };
  std::vector<LabelledPair> pairs;
  std::vector<LabelledImage> images;
  std::string root;
  if (pairs_mode) {
    absl::StatusOr<std::vector<LabelledPair>> parsed = ReadPairList(*args->Get("pairs"));
    if (!parsed.ok()) return fail(parsed.status());
    pairs = std::move(*parsed);
    images = ImagesOfPairs(pairs);
    root = *args->Get("images");
  } else {
    root = *args->Get("gallery");
    absl::StatusOr<std::vector<LabelledImage>> scanned = ScanGalleryFolder(root);
    if (!scanned.ok()) return fail(scanned.status());
    images = std::move(*scanned);
  }
  absl::StatusOr<LocalEngine> local = LoadLocalEngine(*args, /*need_model=*/true);
  if (!local.ok()) return fail(local.status());

  const auto start = std::chrono::steady_clock::now();
  EmbedLabelledImages(*local->engine, root, images);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ComparisonSet comparisons = pairs_mode ? ComparePairs(pairs, images) : CompareAllPairs(images);

  absl::StatusOr<metrics::ComparisonScores> scores = metrics::ComparisonScores::FromDistances(
      std::move(comparisons.mated), std::move(comparisons.non_mated));
  if (!scores.ok()) return fail(scores.status());
  const metrics::VerificationReport report = metrics::ComputeVerificationReport(
      *scores, local->manifest.distance.default_threshold);

  nlohmann::json failures = nlohmann::json::array();
  for (const LabelledImage& image : images) {
    if (image.enrolled) continue;
    failures.push_back({{"file", image.path}, {"reason", image.failure}});
    std::cerr << "partner_node evaluate: failure to enrol: " << image.failure << "\n";
  }
  nlohmann::json j = ReportJson(report);
  j["model"] = local->manifest.model_id + " " + local->manifest.version;
  j["images"] = images.size();
  j["failures_to_enrol"] = failures.size();
  j["fte_rate"] = images.empty() ? 0.0 : double(failures.size()) / images.size();
  j["failures"] = failures;
  if (pairs_mode) {
    j["pairs"] = {{"listed", pairs.size()}, {"skipped_fte", comparisons.skipped_pairs}};
  } else {
    std::set<std::string> subjects;
    for (const LabelledImage& image : images) subjects.insert(image.subject);
    j["subjects"] = subjects.size();
  }
  j["workers"] = local->engine->workers();
  j["throughput_images_per_s"] = seconds > 0 ? images.size() / seconds : 0.0;
  if (args->Has("json")) {
    std::cout << j.dump(2) << "\n";
  } else {
    PrintText(j, report);
  }
  return 0;
}

}  // namespace fedface::partner
