#include "core/config/config_schema.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fedface {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const char* ConfigValueTypeName(ConfigValueType type) {
  switch (type) {
    case ConfigValueType::kString:
      return "string";
    case ConfigValueType::kInt:
      return "integer";
    case ConfigValueType::kBool:
      return "bool";
    case ConfigValueType::kStringList:
      return "list of strings";
    case ConfigValueType::kPath:
      return "path";
    case ConfigValueType::kFile:
      return "file";
    case ConfigValueType::kDir:
      return "directory";
  }
  return "?";
}

ConfigSchema::ConfigSchema(std::string title, std::vector<ConfigKey> keys)
    : title_(std::move(title)) {
  Add(keys);
}

void ConfigSchema::Add(const std::vector<ConfigKey>& keys) {
  for (const ConfigKey& key : keys) {
    // A clash is a programming error in a schema declaration; every test that loads the schema
    // would hit it, so stop loudly rather than ship an ambiguous file format.
    if (Find(key.path) != nullptr || IsSection(key.path)) {
      std::fprintf(stderr, "config schema '%s': key '%s' declared twice or also a section\n",
                   title_.c_str(), key.path.c_str());
      std::abort();
    }
    for (size_t dot = key.path.find('.'); dot != std::string::npos;
         dot = key.path.find('.', dot + 1)) {
      if (Find(key.path.substr(0, dot)) != nullptr) {
        std::fprintf(stderr, "config schema '%s': '%s' is both a key and a section\n",
                     title_.c_str(), key.path.substr(0, dot).c_str());
        std::abort();
      }
    }
    keys_.push_back(key);
  }
}

const ConfigKey* ConfigSchema::Find(std::string_view path) const {
  for (const ConfigKey& key : keys_) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

void ConfigSchema::Retire(const std::vector<RetiredConfigKey>& keys) {
  for (const RetiredConfigKey& key : keys) {
    if (Find(key.path) != nullptr || IsSection(key.path) || FindRetired(key.path) != nullptr) {
      std::fprintf(stderr, "config schema '%s': retired key '%s' is also declared\n",
                   title_.c_str(), key.path.c_str());
      std::abort();
    }
    retired_.push_back(key);
  }
}

const RetiredConfigKey* ConfigSchema::FindRetired(std::string_view path) const {
  for (const RetiredConfigKey& key : retired_) {
    if (key.path == path) return &key;
  }
  return nullptr;
}

bool ConfigSchema::IsSection(std::string_view path) const {
  for (const ConfigKey& key : keys_) {
    if (key.path.size() > path.size() && key.path.compare(0, path.size(), path) == 0 &&
        key.path[path.size()] == '.') {
      return true;
    }
  }
  return false;
}

std::string ConfigSchema::ClosestKey(std::string_view path) const {
  std::string best;
  // Typos and near-synonyms (chunk_size for chunk_bytes), not unrelated keys.
  size_t best_distance = std::max<size_t>(3, path.size() / 4) + 1;
  for (const ConfigKey& key : keys_) {
    const size_t d = EditDistance(path, key.path);
    if (d < best_distance) {
      best_distance = d;
      best = key.path;
    }
  }
  return best;
}

std::string ConfigSchema::HelpText() const {
  std::string out = absl::StrCat(title_, " (YAML; relative paths are relative to the file):\n");
  for (const ConfigKey& key : keys_) {
    absl::StrAppend(&out, "  ", key.path, "  (", ConfigValueTypeName(key.type));
    if (key.type == ConfigValueType::kInt && (key.min != std::numeric_limits<int64_t>::min() ||
                                              key.max != std::numeric_limits<int64_t>::max())) {
      absl::StrAppend(&out, " in [", key.min, ", ", key.max, "]");
    }
    if (!key.one_of.empty()) absl::StrAppend(&out, ": ", absl::StrJoin(key.one_of, " | "));
    if (key.required) {
      absl::StrAppend(&out, ", required)\n");
    } else if (!key.default_value.empty()) {
      absl::StrAppend(&out, ", default ", key.default_value, ")\n");
    } else {
      absl::StrAppend(&out, ", optional)\n");
    }
    // Wrap the documentation at 100 columns under a 6-space indent.
    std::string line = "     ";
    for (absl::string_view word : absl::StrSplit(key.doc, ' ', absl::SkipEmpty())) {
      if (line.size() + 1 + word.size() > 100 && line.size() > 6) {
        absl::StrAppend(&out, line, "\n");
        line = "     ";
      }
      absl::StrAppend(&line, " ", word);
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

}  // namespace fedface
