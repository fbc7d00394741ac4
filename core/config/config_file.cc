#include "core/config/config_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/common/files.h"
#include "core/common/status_macros.h"

namespace fedface {
namespace {

constexpr uint64_t kMaxConfigBytes = uint64_t{1} << 20;

std::string Where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return absl::StrCat(source, ":", mark.line + 1, ":", mark.column + 1);
}

const char* NodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "an undefined node";
  }
}

// Converts and checks one value. Returns an error text without the location prefix.
class ValueReader {
 public:
  explicit ValueReader(std::string base_dir) : base_dir_(std::move(base_dir)) {}

  // On success fills *out and returns "".
  std::string Read(const ConfigKey& key, const YAML::Node& node, ConfigValue* out) const {
    if (node.IsNull()) return absl::StrCat(key.path, ": has no value");
    if (key.type == ConfigValueType::kStringList) {
      if (!node.IsSequence()) {
        return absl::StrCat(key.path, ": expected a list of strings, got ", NodeKind(node));
      }
      std::vector<std::string> list;
      for (const YAML::Node& item : node) {
        if (!item.IsScalar()) {
          return absl::StrCat(key.path, ": expected a list of strings, got an item that is ",
                              NodeKind(item));
        }
        list.push_back(item.Scalar());
      }
      *out = std::move(list);
      return "";
    }
    if (!node.IsScalar()) {
      return absl::StrCat(key.path, ": expected ", ArticleFor(key.type), ", got ", NodeKind(node));
    }
    const std::string& text = node.Scalar();
    switch (key.type) {
      case ConfigValueType::kString:
        if (!key.one_of.empty() &&
            std::find(key.one_of.begin(), key.one_of.end(), text) == key.one_of.end()) {
          return absl::StrCat(key.path, ": '", text, "' is not one of ",
                              absl::StrJoin(key.one_of, " | "));
        }
        *out = text;
        return "";
      case ConfigValueType::kInt: {
        int64_t n = 0;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, n);
        if (text.empty() || ec == std::errc::invalid_argument || ptr != end) {
          return absl::StrCat(key.path, ": expected an integer, got '", text, "'");
        }
        if (ec == std::errc::result_out_of_range || n < key.min || n > key.max) {
          return absl::StrCat(key.path, ": ", text, " is outside [", key.min, ", ", key.max, "]");
        }
        *out = n;
        return "";
      }
      case ConfigValueType::kBool:
        if (text == "true" || text == "false") {
          *out = (text == "true");
          return "";
        }
        return absl::StrCat(key.path, ": expected true or false, got '", text, "'");
      case ConfigValueType::kPath:
      case ConfigValueType::kFile:
      case ConfigValueType::kDir:
        return ReadPath(key, text, out);
      case ConfigValueType::kStringList:
        break;
    }
    return absl::StrCat(key.path, ": unsupported type");
  }

 private:
  static const char* ArticleFor(ConfigValueType type) {
    switch (type) {
      case ConfigValueType::kInt:
        return "an integer";
      case ConfigValueType::kBool:
        return "true or false";
      case ConfigValueType::kString:
        return "a string";
      default:
        return "a path";
    }
  }

  std::string ReadPath(const ConfigKey& key, const std::string& text, ConfigValue* out) const {
    if (text.empty()) return absl::StrCat(key.path, ": empty path");
    std::filesystem::path p(text);
    if (p.is_relative()) p = std::filesystem::path(base_dir_) / p;
    const std::string resolved = p.lexically_normal().string();
    std::error_code ec;
    const auto status = std::filesystem::status(resolved, ec);
    if (key.type == ConfigValueType::kFile) {
      if (!std::filesystem::exists(status)) {
        return absl::StrCat(key.path, ": ", resolved, ": no such file");
      }
      if (!std::filesystem::is_regular_file(status)) {
        return absl::StrCat(key.path, ": ", resolved, ": not a regular file");
      }
    }
    if (key.type == ConfigValueType::kDir) {
      if (!std::filesystem::exists(status)) {
        return absl::StrCat(key.path, ": ", resolved, ": no such directory");
      }
      if (!std::filesystem::is_directory(status)) {
        return absl::StrCat(key.path, ": ", resolved, ": not a directory");
      }
    }
    *out = resolved;
    return "";
  }

  std::string base_dir_;
};

struct Walker {
  const ConfigSchema& schema;
  const std::string& source;
  const ValueReader& reader;
  std::vector<std::string> errors;
  std::map<std::string, ConfigValue, std::less<>> values;
  std::set<std::string, std::less<>> seen;

  void WalkMap(const YAML::Node& map, const std::string& prefix) {
    std::set<std::string> keys_here;
    for (const auto& entry : map) {
      const YAML::Node& key_node = entry.first;
      const YAML::Node& value = entry.second;
      if (!key_node.IsScalar()) {
        errors.push_back(absl::StrCat(Where(source, key_node.Mark()),
                                      ": a key must be a plain name, got ", NodeKind(key_node)));
        continue;
      }
      const std::string path =
          prefix.empty() ? key_node.Scalar() : absl::StrCat(prefix, ".", key_node.Scalar());
      if (!keys_here.insert(key_node.Scalar()).second) {
        errors.push_back(
            absl::StrCat(Where(source, key_node.Mark()), ": duplicate key '", path, "'"));
        continue;
      }
      if (const ConfigKey* key = schema.Find(path)) {
        ConfigValue v;
        std::string error = reader.Read(*key, value, &v);
        if (!error.empty()) {
          errors.push_back(absl::StrCat(Where(source, value.Mark()), ": ", error));
          continue;
        }
        values[path] = std::move(v);
        seen.insert(path);
      } else if (schema.IsSection(path)) {
        if (value.IsNull()) continue;  // an empty section
        if (!value.IsMap()) {
          errors.push_back(absl::StrCat(Where(source, value.Mark()), ": ", path,
                                        ": expected a section of keys, got ", NodeKind(value)));
          continue;
        }
        WalkMap(value, path);
      } else if (const RetiredConfigKey* retired = schema.FindRetired(path)) {
        errors.push_back(absl::StrCat(Where(source, key_node.Mark()), ": key '", path,
                                      "' is no longer supported: ", retired->advice));
      } else {
        std::string message =
            absl::StrCat(Where(source, key_node.Mark()), ": unknown key '", path, "'");
        const std::string closest = schema.ClosestKey(path);
        if (!closest.empty()) absl::StrAppend(&message, " (did you mean '", closest, "'?)");
        errors.push_back(std::move(message));
      }
    }
  }
};

[[noreturn]] void SchemaMisuse(std::string_view path, std::string_view why) {
  std::fprintf(stderr, "config: programming error: key '%.*s' %.*s\n",
               static_cast<int>(path.size()), path.data(), static_cast<int>(why.size()),
               why.data());
  std::abort();
}

}  // namespace

absl::StatusOr<Config> Config::Load(const std::string& path, const ConfigSchema& schema) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxConfigBytes));
  std::error_code ec;
  std::filesystem::path base = std::filesystem::absolute(path, ec).parent_path();
  return Parse(text, path, base.string(), schema);
}

absl::StatusOr<Config> Config::Parse(std::string_view yaml, const std::string& source,
                                     const std::string& base_dir, const ConfigSchema& schema) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(source, e.mark), ": not valid YAML: ", e.msg));
  }
  ValueReader reader(base_dir);
  Walker walker{schema, source, reader, {}, {}, {}};
  if (root.IsMap()) {
    walker.WalkMap(root, "");
  } else if (!root.IsNull()) {
    walker.errors.push_back(absl::StrCat(
        Where(source, root.Mark()), ": expected a map of keys at the top, got ", NodeKind(root)));
  }
  Config config;
  config.source_ = source;
  for (const ConfigKey& key : schema.keys()) {
    config.types_[key.path] = key.type;
    if (walker.seen.count(key.path)) continue;
    if (key.required) {
      walker.errors.push_back(absl::StrCat(source, ": missing required key '", key.path, "'"));
      continue;
    }
    if (key.default_value.empty()) continue;
    ConfigValue v;
    std::string error;
    try {
      error = reader.Read(key, YAML::Load(key.default_value), &v);
    } catch (const YAML::Exception& e) {
      error = absl::StrCat(key.path, ": default '", key.default_value, "' is not valid YAML");
    }
    if (!error.empty()) {
      walker.errors.push_back(absl::StrCat(source, ": default of ", error));
      continue;
    }
    walker.values[key.path] = std::move(v);
  }
  if (!walker.errors.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(walker.errors, "; "));
  }
  config.values_ = std::move(walker.values);
  config.set_in_file_ = std::move(walker.seen);
  return config;
}

const Config::Value* Config::Lookup(std::string_view path, ConfigValueType want) const {
  auto type = types_.find(path);
  if (type == types_.end()) SchemaMisuse(path, "is not declared in the schema");
  const bool want_path = want == ConfigValueType::kPath;
  const bool is_path = type->second == ConfigValueType::kPath ||
                       type->second == ConfigValueType::kFile ||
                       type->second == ConfigValueType::kDir;
  if (want_path ? !is_path : type->second != want) SchemaMisuse(path, "read with the wrong type");
  auto it = values_.find(path);
  return it == values_.end() ? nullptr : &it->second;
}

std::string Config::GetString(std::string_view path) const {
  const Value* v = Lookup(path, ConfigValueType::kString);
  return v ? std::get<std::string>(*v) : std::string();
}

std::string Config::GetPath(std::string_view path) const {
  const Value* v = Lookup(path, ConfigValueType::kPath);
  return v ? std::get<std::string>(*v) : std::string();
}

int64_t Config::GetInt(std::string_view path) const {
  const Value* v = Lookup(path, ConfigValueType::kInt);
  return v ? std::get<int64_t>(*v) : 0;
}

bool Config::GetBool(std::string_view path) const {
  const Value* v = Lookup(path, ConfigValueType::kBool);
  return v ? std::get<bool>(*v) : false;
}

std::vector<std::string> Config::GetStringList(std::string_view path) const {
  const Value* v = Lookup(path, ConfigValueType::kStringList);
  return v ? std::get<std::vector<std::string>>(*v) : std::vector<std::string>();
}

}  // namespace fedface
