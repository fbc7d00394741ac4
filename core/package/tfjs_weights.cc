#include "core/package/tfjs_weights.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/files.h"
#include "core/common/sha256.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxTfjsManifestBytes = uint64_t{4} << 20;
constexpr uint64_t kMaxTfjsBinBytes = uint64_t{256} << 20;
constexpr uint64_t kMaxTensorElements = uint64_t{1} << 28;

absl::Status Bad(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

float LittleEndianFloat(const unsigned char* p) {
  const uint32_t bits =
      uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
  return std::bit_cast<float>(bits);
}

struct Entry {
  std::string name;
  std::vector<int> shape;
  uint64_t elements = 0;
  bool quantized = false;
  double scale = 0, min = 0;
  uint64_t bytes() const { return quantized ? elements : elements * 4; }
};

absl::StatusOr<Entry> ParseEntry(const Json& w, absl::string_view source, size_t index) {
  const std::string where = absl::StrCat("weights entry ", index);
  if (!w.is_object()) return Bad(source, absl::StrCat(where, ": not an object"));
  Entry e;
  if (!w.contains("name") || !w["name"].is_string()) {
    return Bad(source, absl::StrCat(where, ": missing string 'name'"));
  }
  e.name = w["name"].get<std::string>();
  const std::string tensor = absl::StrCat("tensor '", e.name, "'");
  if (!w.contains("shape") || !w["shape"].is_array()) {
    return Bad(source, absl::StrCat(tensor, ": missing array 'shape'"));
  }
  e.elements = 1;
  for (const Json& d : w["shape"]) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (1 << 24)) {
      return Bad(source, absl::StrCat(tensor, ": bad shape ", w["shape"].dump()));
    }
    e.shape.push_back(d.get<int>());
    e.elements *= static_cast<uint64_t>(d.get<int64_t>());
    if (e.elements > kMaxTensorElements) {
      return Bad(source, absl::StrCat(tensor, ": shape ", w["shape"].dump(), " is too large"));
    }
  }
  if (!w.contains("dtype") || !w["dtype"].is_string()) {
    return Bad(source, absl::StrCat(tensor, ": missing string 'dtype'"));
  }
  const std::string dtype = w["dtype"].get<std::string>();
  if (dtype != "float32") {
    return Bad(source, absl::StrCat(tensor, ": unsupported dtype '", dtype, "'"));
  }
  if (w.contains("quantization")) {
    const Json& q = w["quantization"];
    if (!q.is_object() || !q.contains("dtype") || !q["dtype"].is_string()) {
      return Bad(source, absl::StrCat(tensor, ": malformed 'quantization'"));
    }
    const std::string qtype = q["dtype"].get<std::string>();
    if (qtype != "uint8") {
      return Bad(source, absl::StrCat(tensor, ": unsupported quantization dtype '", qtype, "'"));
    }
    if (!q.contains("scale") || !q["scale"].is_number() || !q.contains("min") ||
        !q["min"].is_number()) {
      return Bad(source, absl::StrCat(tensor, ": quantization needs numeric 'scale' and 'min'"));
    }
    e.quantized = true;
    e.scale = q["scale"].get<double>();
    e.min = q["min"].get<double>();
    if (!std::isfinite(e.scale) || !std::isfinite(e.min)) {
      return Bad(source, absl::StrCat(tensor, ": non-finite quantization parameters"));
    }
  }
  return e;
}

// "paths" entries are file names next to the manifest; nothing may point elsewhere.
bool IsSafeShardName(const std::string& name) {
  return !name.empty() && name.find('/') == std::string::npos && name != "." && name != ".." &&
         name.find('\0') == std::string::npos;
}

absl::StatusOr<Json> ParseManifestJson(std::string_view manifest_json, absl::string_view source) {
  Json j = Json::parse(manifest_json.begin(), manifest_json.end(), nullptr, false);
  if (j.is_discarded()) return Bad(source, "not valid JSON");
  if (!j.is_array() || j.empty()) return Bad(source, "expected a non-empty list of weight groups");
  for (size_t g = 0; g < j.size(); ++g) {
    const Json& group = j[g];
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
        !group.contains("weights") || !group["weights"].is_array()) {
      return Bad(source,
                 absl::StrCat("group ", g, ": expected {\"paths\": [...], \"weights\": [...]}"));
    }
    for (const Json& p : group["paths"]) {
      if (!p.is_string() || !IsSafeShardName(p.get<std::string>())) {
        return Bad(source, absl::StrCat("group ", g, ": bad path ", p.dump()));
      }
    }
  }
  return j;
}

}  // namespace

absl::StatusOr<std::vector<NamedTensor>> DecodeTfjsWeights(
    std::string_view manifest_json, const std::vector<std::string_view>& group_bins,
    std::string_view source_view) {
  const std::string source(source_view);  // Debian's absl::StrCat does not take std::string_view
  ASSIGN_OR_RETURN(auto j, ParseManifestJson(manifest_json, source));
  if (group_bins.size() != j.size()) {
    return Bad(source,
               absl::StrCat(j.size(), " weight groups but ", group_bins.size(), " binary blobs"));
  }
  std::vector<NamedTensor> tensors;
  for (size_t g = 0; g < j.size(); ++g) {
    const Json& group = j[g];
    std::vector<std::string> paths;
    for (const Json& p : group["paths"]) paths.push_back(p.get<std::string>());
    // Bin files live next to the manifest; name them with its folder in errors.
    const fs::path folder = fs::path(source).parent_path();
    const std::string bin_name = paths.empty() ? absl::StrCat(source, ": group ", g)
                                               : (folder / absl::StrJoin(paths, "+")).string();
    const std::string_view bin = group_bins[g];
    uint64_t offset = 0;
    for (size_t i = 0; i < group["weights"].size(); ++i) {
      ASSIGN_OR_RETURN(auto e, ParseEntry(group["weights"][i], source, i));
      if (offset + e.bytes() > bin.size()) {
        return absl::DataLossError(absl::StrCat(bin_name, ": truncated: tensor '", e.name,
                                                "' needs bytes [", offset, ", ", offset + e.bytes(),
                                                ") but the file has ", bin.size()));
      }
      const auto* p = reinterpret_cast<const unsigned char*>(bin.data()) + offset;
      NamedTensor t;
      t.name = e.name;
      t.shape = e.shape;
      t.values.resize(e.elements);
      if (e.quantized) {
        // tfjs dequantizes in double precision, then stores float32.
        for (uint64_t k = 0; k < e.elements; ++k) {
          t.values[k] = static_cast<float>(p[k] * e.scale + e.min);
        }
      } else {
        for (uint64_t k = 0; k < e.elements; ++k) t.values[k] = LittleEndianFloat(p + 4 * k);
      }
      offset += e.bytes();
      tensors.push_back(std::move(t));
    }
    if (offset != bin.size()) {
      return absl::DataLossError(absl::StrCat(bin_name, ": ", bin.size() - offset,
                                              " bytes after the last tensor; the manifest ",
                                              "describes ", offset, " bytes"));
    }
  }
  return tensors;
}

absl::StatusOr<TfjsWeights> ReadTfjsRecognitionWeights(const std::string& faceapi_dir) {
  std::error_code ec;
  fs::path dir = fs::path(faceapi_dir) / "model";
  if (!fs::exists(dir / kTfjsRecognitionManifest, ec)) dir = faceapi_dir;
  TfjsWeights out;
  out.manifest_path = (dir / kTfjsRecognitionManifest).string();
  auto manifest = ReadFile(out.manifest_path, kMaxTfjsManifestBytes);
  if (!manifest.ok()) {
    if (absl::IsNotFound(manifest.status())) {
      return absl::NotFoundError(absl::StrCat(faceapi_dir, ": no ", kTfjsRecognitionManifest,
                                              " in it or in its model/ folder"));
    }
    return manifest.status();
  }
  out.manifest_sha256 = Sha256Hex(*manifest);
  ASSIGN_OR_RETURN(auto j, ParseManifestJson(*manifest, out.manifest_path));

  std::vector<std::string> group_data;
  std::string all_bins;
  uint64_t total = 0;
  for (const Json& group : j) {
    std::string data;
    for (const Json& p : group["paths"]) {
      const std::string path = (dir / p.get<std::string>()).string();
      ASSIGN_OR_RETURN(auto bin, ReadFile(path, kMaxTfjsBinBytes));
      total += bin.size();
      if (total > kMaxTfjsBinBytes) {
        return absl::ResourceExhaustedError(
            absl::StrCat(path, ": weight files exceed ", kMaxTfjsBinBytes, " bytes in total"));
      }
      data += bin;
    }
    all_bins += data;
    group_data.push_back(std::move(data));
  }
  out.bin_sha256 = Sha256Hex(all_bins);
  std::vector<std::string_view> views(group_data.begin(), group_data.end());
  ASSIGN_OR_RETURN(auto tensors, DecodeTfjsWeights(*manifest, views, out.manifest_path));
  out.tensors = std::move(tensors);
  return out;
}

}  // namespace fedface
