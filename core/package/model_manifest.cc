#include "core/package/model_manifest.h"

#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

using Json = nlohmann::json;

constexpr std::array<double, 3> kMeanRgb = {122.782, 117.001, 104.298};
constexpr double kInputScale = 0.00390625;
constexpr double kMaxEmbeddingMagnitude = 1e3;  // real values are well below 1

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("manifest: ", field, ": ", what));
}

bool IsLowerHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Every pattern below matches short strings only; longer input is refused before std::regex
// (whose matcher recurses per character) ever sees it.
constexpr size_t kMaxPatternInput = 128;

bool IsValidModelId(std::string_view id) {
  if (id.size() > kMaxPatternInput) return false;
  static const std::regex re("^[a-z0-9][a-z0-9._-]{0,63}$");
  return std::regex_match(id.begin(), id.end(), re);
}

bool IsValidChipPath(std::string_view path) {
  if (path.size() > kMaxPatternInput) return false;
  static const std::regex re("^selftest/[A-Za-z0-9_-]{1,64}\\.png$");
  return std::regex_match(path.begin(), path.end(), re);
}

bool IsValidTimestamp(std::string_view t) {
  if (t.size() > kMaxPatternInput) return false;
  static const std::regex re("^(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})Z$");
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(t.begin(), t.end(), m, re)) return false;
  auto num = [&](int i) { return std::stoi(m[i].str()); };
  return num(2) >= 1 && num(2) <= 12 && num(3) >= 1 && num(3) <= 31 && num(4) <= 23 &&
         num(5) <= 59 && num(6) <= 60;
}

// JSON text of a value for error messages; never throws, even on invalid UTF-8.
template <typename T>
std::string Str(const T& v) {
  return Json(v).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- strict JSON reading ----------------------------------------------------------------------

// Requires `obj` at `where` to be an object with exactly `keys`, and perhaps `optional` ones.
absl::Status CheckKeys(const Json& obj, absl::string_view where,
                       std::initializer_list<const char*> keys,
                       std::initializer_list<const char*> optional = {}) {
  if (!obj.is_object())
    return FieldError(where, absl::StrCat("expected an object, got ", obj.type_name()));
  std::set<std::string> allowed(keys.begin(), keys.end());
  allowed.insert(optional.begin(), optional.end());
  for (const auto& [key, value] : obj.items()) {
    if (!allowed.count(key)) {
      return FieldError(where.empty() ? "(top level)" : where,
                        absl::StrCat("unknown key '", key, "'"));
    }
  }
  for (const char* key : keys) {
    if (!obj.contains(key)) {
      return FieldError(where.empty() ? "(top level)" : where,
                        absl::StrCat("missing key '", key, "'"));
    }
  }
  return absl::OkStatus();
}

std::string Path(absl::string_view where, absl::string_view key) {
  return where.empty() ? std::string(key) : absl::StrCat(where, ".", key);
}

absl::StatusOr<std::string> GetString(const Json& obj, absl::string_view where, const char* key) {
  const Json& v = obj.at(key);
  if (!v.is_string())
    return FieldError(Path(where, key), absl::StrCat("expected a string, got ", v.type_name()));
  return v.get<std::string>();
}

absl::StatusOr<double> GetNumber(const Json& obj, absl::string_view where, const char* key) {
  const Json& v = obj.at(key);
  if (!v.is_number())
    return FieldError(Path(where, key), absl::StrCat("expected a number, got ", v.type_name()));
  return v.get<double>();
}

absl::StatusOr<int64_t> GetInteger(const Json& obj, absl::string_view where, const char* key) {
  const Json& v = obj.at(key);
  if (!v.is_number_integer()) {
    return FieldError(Path(where, key), absl::StrCat("expected an integer, got ", v.type_name()));
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t{1} << 62) {
    return FieldError(Path(where, key), "integer out of range");
  }
  return v.get<int64_t>();
}

absl::StatusOr<const Json*> GetArray(const Json& obj, absl::string_view where, const char* key) {
  const Json& v = obj.at(key);
  if (!v.is_array())
    return FieldError(Path(where, key), absl::StrCat("expected an array, got ", v.type_name()));
  return &v;
}

absl::StatusOr<ModelManifest> FromJson(const Json& j) {
  ModelManifest m;
  RETURN_IF_ERROR(CheckKeys(j, "",
                            {"format", "model_id", "version", "architecture", "input", "distance",
                             "weights", "self_test", "source", "signing_key_id", "created_at"},
                            {"int8_calibration"}));
  if (j.contains("int8_calibration")) {
    const Json& c = j.at("int8_calibration");
    RETURN_IF_ERROR(
        CheckKeys(c, "int8_calibration", {"activation_scales", "chips", "self_test_tolerance"}));
    Int8Calibration cal;
    const Json* scales;
    ASSIGN_OR_RETURN(scales, GetArray(c, "int8_calibration", "activation_scales"));
    if (scales->size() != static_cast<size_t>(kInt8ActivationScaleCount)) {
      return FieldError(
          "int8_calibration.activation_scales",
          absl::StrCat("expected ", kInt8ActivationScaleCount, " numbers, got ", scales->size()));
    }
    for (size_t i = 0; i < scales->size(); ++i) {
      if (!(*scales)[i].is_number()) {
        return FieldError("int8_calibration.activation_scales",
                          absl::StrCat("element ", i, " is not a number"));
      }
      cal.activation_scales.push_back((*scales)[i].get<double>());
    }
    int64_t chips;
    ASSIGN_OR_RETURN(chips, GetInteger(c, "int8_calibration", "chips"));
    if (chips < 1 || chips > kMaxInt8CalibrationChips) {
      return FieldError("int8_calibration.chips",
                        absl::StrCat(chips, " is outside [1, ", kMaxInt8CalibrationChips, "]"));
    }
    cal.chips = static_cast<int>(chips);
    ASSIGN_OR_RETURN(cal.self_test_tolerance,
                     GetNumber(c, "int8_calibration", "self_test_tolerance"));
    m.int8_calibration = std::move(cal);
  }
  ASSIGN_OR_RETURN(m.format, GetString(j, "", "format"));
  ASSIGN_OR_RETURN(m.model_id, GetString(j, "", "model_id"));
  ASSIGN_OR_RETURN(m.version, GetString(j, "", "version"));
  ASSIGN_OR_RETURN(m.architecture, GetString(j, "", "architecture"));
  ASSIGN_OR_RETURN(m.signing_key_id, GetString(j, "", "signing_key_id"));
  ASSIGN_OR_RETURN(m.created_at, GetString(j, "", "created_at"));

  const Json& in = j.at("input");
  RETURN_IF_ERROR(CheckKeys(in, "input", {"width", "height", "channels", "mean_rgb", "scale"}));
  int64_t width, height;
  ASSIGN_OR_RETURN(width, GetInteger(in, "input", "width"));
  ASSIGN_OR_RETURN(height, GetInteger(in, "input", "height"));
  if (width != kChipSize)
    return FieldError("input.width", absl::StrCat("expected ", kChipSize, ", got ", width));
  if (height != kChipSize)
    return FieldError("input.height", absl::StrCat("expected ", kChipSize, ", got ", height));
  m.input.width = static_cast<int>(width);
  m.input.height = static_cast<int>(height);
  ASSIGN_OR_RETURN(m.input.channels, GetString(in, "input", "channels"));
  const Json* mean;
  ASSIGN_OR_RETURN(mean, GetArray(in, "input", "mean_rgb"));
  if (mean->size() != 3)
    return FieldError("input.mean_rgb", absl::StrCat("expected 3 numbers, got ", mean->size()));
  for (size_t i = 0; i < 3; ++i) {
    if (!(*mean)[i].is_number()) return FieldError("input.mean_rgb", "expected numbers");
    m.input.mean_rgb[i] = (*mean)[i].get<double>();
  }
  ASSIGN_OR_RETURN(m.input.scale, GetNumber(in, "input", "scale"));

  const Json& dist = j.at("distance");
  RETURN_IF_ERROR(CheckKeys(dist, "distance", {"metric", "default_threshold"}));
  ASSIGN_OR_RETURN(m.distance.metric, GetString(dist, "distance", "metric"));
  ASSIGN_OR_RETURN(m.distance.default_threshold, GetNumber(dist, "distance", "default_threshold"));

  const Json& w = j.at("weights");
  RETURN_IF_ERROR(CheckKeys(w, "weights", {"file", "bytes", "sha256"}));
  ASSIGN_OR_RETURN(m.weights.file, GetString(w, "weights", "file"));
  int64_t bytes;
  ASSIGN_OR_RETURN(bytes, GetInteger(w, "weights", "bytes"));
  if (bytes < 0) return FieldError("weights.bytes", "negative");
  m.weights.bytes = static_cast<uint64_t>(bytes);
  ASSIGN_OR_RETURN(m.weights.sha256, GetString(w, "weights", "sha256"));

  const Json& st = j.at("self_test");
  RETURN_IF_ERROR(CheckKeys(st, "self_test", {"tolerance", "cases"}));
  ASSIGN_OR_RETURN(m.self_test.tolerance, GetNumber(st, "self_test", "tolerance"));
  const Json* cases;
  ASSIGN_OR_RETURN(cases, GetArray(st, "self_test", "cases"));
  if (cases->size() > kMaxSelfTestCases) {
    return FieldError("self_test.cases", absl::StrCat(cases->size(), " cases exceed the limit of ",
                                                      kMaxSelfTestCases));
  }
  for (size_t i = 0; i < cases->size(); ++i) {
    const std::string where = absl::StrCat("self_test.cases[", i, "]");
    const Json& c = (*cases)[i];
    RETURN_IF_ERROR(CheckKeys(c, where, {"chip", "chip_sha256", "embedding"}));
    SelfTestCase tc;
    ASSIGN_OR_RETURN(tc.chip, GetString(c, where, "chip"));
    ASSIGN_OR_RETURN(tc.chip_sha256, GetString(c, where, "chip_sha256"));
    const Json* emb;
    ASSIGN_OR_RETURN(emb, GetArray(c, where, "embedding"));
    if (emb->size() != static_cast<size_t>(kEmbeddingDim)) {
      return FieldError(Path(where, "embedding"),
                        absl::StrCat("expected ", kEmbeddingDim, " numbers, got ", emb->size()));
    }
    for (int k = 0; k < kEmbeddingDim; ++k) {
      const Json& v = (*emb)[k];
      if (!v.is_number())
        return FieldError(Path(where, "embedding"),
                          absl::StrCat("element ", k, " is not a number"));
      const double d = v.get<double>();
      if (!std::isfinite(d) || std::fabs(d) > kMaxEmbeddingMagnitude) {
        return FieldError(Path(where, "embedding"), absl::StrCat("element ", k, " out of range"));
      }
      tc.embedding[k] = static_cast<float>(d);
    }
    m.self_test.cases.push_back(std::move(tc));
  }

  const Json& src = j.at("source");
  RETURN_IF_ERROR(CheckKeys(src, "source", {"npm_package", "manifest_sha256", "bin_sha256"}));
  ASSIGN_OR_RETURN(m.source.npm_package, GetString(src, "source", "npm_package"));
  ASSIGN_OR_RETURN(m.source.manifest_sha256, GetString(src, "source", "manifest_sha256"));
  ASSIGN_OR_RETURN(m.source.bin_sha256, GetString(src, "source", "bin_sha256"));
  return m;
}

// Duplicate keys would let two readers see two different manifests behind one signature.
struct DuplicateKeyDetector {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool operator()(int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  }
};

}  // namespace

bool IsValidModelVersion(std::string_view version) {
  static const std::regex re(
      "^(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})"
      "(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$");
  return version.size() <= 64 && std::regex_match(version.begin(), version.end(), re);
}

std::string UtcNowIso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::Status ValidateManifest(const ModelManifest& m) {
  if (m.format != kManifestFormat) {
    return FieldError("format",
                      absl::StrCat("expected ", Str(kManifestFormat), ", got ", Str(m.format)));
  }
  if (!IsValidModelId(m.model_id)) {
    return FieldError("model_id",
                      absl::StrCat(Str(m.model_id), " is not [a-z0-9][a-z0-9._-]{0,63}"));
  }
  if (!IsValidModelVersion(m.version)) {
    return FieldError("version",
                      absl::StrCat(Str(m.version), " is not MAJOR.MINOR.PATCH[-pre][+build]"));
  }
  if (m.architecture != kArchitectureDlibFaceResnetV1) {
    return FieldError("architecture",
                      absl::StrCat("unsupported ", Str(m.architecture), "; expected ",
                                   Str(kArchitectureDlibFaceResnetV1)));
  }
  if (m.input.width != kChipSize || m.input.height != kChipSize) {
    return FieldError("input", absl::StrCat("expected ", kChipSize, "x", kChipSize, ", got ",
                                            m.input.width, "x", m.input.height));
  }
  if (m.input.channels != "RGB") {
    return FieldError("input.channels",
                      absl::StrCat("expected \"RGB\", got ", Str(m.input.channels)));
  }
  if (m.input.mean_rgb != kMeanRgb) {
    return FieldError("input.mean_rgb", absl::StrCat("expected [122.782,117.001,104.298], got ",
                                                     Str(m.input.mean_rgb)));
  }
  if (m.input.scale != kInputScale) {
    return FieldError("input.scale", absl::StrCat("expected 0.00390625, got ", Str(m.input.scale)));
  }
  if (m.distance.metric != "euclidean") {
    return FieldError("distance.metric",
                      absl::StrCat("expected \"euclidean\", got ", Str(m.distance.metric)));
  }
  if (!(m.distance.default_threshold > 0 && m.distance.default_threshold < 4)) {
    return FieldError("distance.default_threshold",
                      absl::StrCat(Str(m.distance.default_threshold), " is outside (0, 4)"));
  }
  if (m.weights.file != kWeightsFile) {
    return FieldError("weights.file",
                      absl::StrCat("expected \"weights.dat\", got ", Str(m.weights.file)));
  }
  if (m.weights.bytes == 0 || m.weights.bytes > kMaxWeightsBytes) {
    return FieldError("weights.bytes",
                      absl::StrCat(m.weights.bytes, " is outside [1, ", kMaxWeightsBytes, "]"));
  }
  if (!IsLowerHex(m.weights.sha256, 64)) {
    return FieldError("weights.sha256", "expected 64 lower-case hex characters");
  }
  if (!(m.self_test.tolerance >= 0 && m.self_test.tolerance < 1)) {
    return FieldError("self_test.tolerance",
                      absl::StrCat(Str(m.self_test.tolerance), " is outside [0, 1)"));
  }
  if (m.self_test.cases.empty() || m.self_test.cases.size() > kMaxSelfTestCases) {
    return FieldError("self_test.cases", absl::StrCat(m.self_test.cases.size(),
                                                      " cases; expected 1 to ", kMaxSelfTestCases));
  }
  std::set<std::string> chips;
  for (size_t i = 0; i < m.self_test.cases.size(); ++i) {
    const SelfTestCase& c = m.self_test.cases[i];
    const std::string where = absl::StrCat("self_test.cases[", i, "]");
    if (!IsValidChipPath(c.chip)) {
      return FieldError(Path(where, "chip"),
                        absl::StrCat(Str(c.chip), " is not selftest/<name>.png"));
    }
    if (!chips.insert(c.chip).second) {
      return FieldError(Path(where, "chip"), absl::StrCat(Str(c.chip), " is listed twice"));
    }
    if (!IsLowerHex(c.chip_sha256, 64)) {
      return FieldError(Path(where, "chip_sha256"), "expected 64 lower-case hex characters");
    }
    for (int k = 0; k < kEmbeddingDim; ++k) {
      if (!std::isfinite(c.embedding[k]) || std::fabs(c.embedding[k]) > kMaxEmbeddingMagnitude) {
        return FieldError(Path(where, "embedding"), absl::StrCat("element ", k, " out of range"));
      }
    }
  }
  if (m.source.npm_package.empty() || m.source.npm_package.size() > 214) {
    return FieldError("source.npm_package", "expected a package spec such as @scope/name@1.2.3");
  }
  if (!IsLowerHex(m.source.manifest_sha256, 64)) {
    return FieldError("source.manifest_sha256", "expected 64 lower-case hex characters");
  }
  if (!IsLowerHex(m.source.bin_sha256, 64)) {
    return FieldError("source.bin_sha256", "expected 64 lower-case hex characters");
  }
  if (!IsLowerHex(m.signing_key_id, 16)) {
    return FieldError("signing_key_id", "expected 16 lower-case hex characters");
  }
  if (!IsValidTimestamp(m.created_at)) {
    return FieldError("created_at",
                      absl::StrCat(Str(m.created_at), " is not UTC YYYY-MM-DDTHH:MM:SSZ"));
  }
  if (m.int8_calibration) {
    return ValidateInt8Calibration(*m.int8_calibration, "manifest: int8_calibration");
  }
  return absl::OkStatus();
}

std::string SerializeManifest(const ModelManifest& m) {
  Json cases = Json::array();
  for (const SelfTestCase& c : m.self_test.cases) {
    Json emb = Json::array();
    for (float v : c.embedding) emb.push_back(static_cast<double>(v));
    cases.push_back({{"chip", c.chip}, {"chip_sha256", c.chip_sha256}, {"embedding", emb}});
  }
  // nlohmann's default object type is a sorted std::map, and it prints the shortest decimal
  // that round-trips each double: the output depends only on the values.
  Json j = {
      {"format", m.format},
      {"model_id", m.model_id},
      {"version", m.version},
      {"architecture", m.architecture},
      {"input",
       {{"width", m.input.width},
        {"height", m.input.height},
        {"channels", m.input.channels},
        {"mean_rgb", m.input.mean_rgb},
        {"scale", m.input.scale}}},
      {"distance",
       {{"metric", m.distance.metric}, {"default_threshold", m.distance.default_threshold}}},
      {"weights",
       {{"file", m.weights.file}, {"bytes", m.weights.bytes}, {"sha256", m.weights.sha256}}},
      {"self_test", {{"tolerance", m.self_test.tolerance}, {"cases", cases}}},
      {"source",
       {{"npm_package", m.source.npm_package},
        {"manifest_sha256", m.source.manifest_sha256},
        {"bin_sha256", m.source.bin_sha256}}},
      {"signing_key_id", m.signing_key_id},
      {"created_at", m.created_at},
  };
  if (m.int8_calibration) {
    j["int8_calibration"] = {{"activation_scales", m.int8_calibration->activation_scales},
                             {"chips", m.int8_calibration->chips},
                             {"self_test_tolerance", m.int8_calibration->self_test_tolerance}};
  }
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<ModelManifest> ParseManifest(std::string_view json, std::string_view source_view) {
  const std::string source(source_view);  // Debian's absl::StrCat does not take std::string_view
  auto prefixed = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(source, ": ", s.message()));
  };
  if (json.size() > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": ", json.size(), " bytes exceeds the limit of ", kMaxManifestBytes));
  }
  DuplicateKeyDetector dup;
  Json j = Json::parse(json.begin(), json.end(), std::ref(dup), /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid JSON"));
  }
  if (!dup.duplicate.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": duplicate key '", dup.duplicate, "'"));
  }
  auto m = FromJson(j);
  if (!m.ok()) return prefixed(m.status());
  absl::Status st = ValidateManifest(*m);
  if (!st.ok()) return prefixed(st);
  return m;
}

}  // namespace fedface
