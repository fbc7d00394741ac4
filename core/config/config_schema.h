// The keys a configuration file may hold: one declaration per key (dotted path, type, default,
// one-line documentation). The same declaration drives the strict loader (config_file.h), the
// `--help` text of every command that reads the file, and the check that docs/configuration.md
// documents every key, so the three cannot drift apart.
//
// Thread safety: a ConfigSchema is immutable after construction except for Add(); const methods
// may be called from any thread.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace fedface {

enum class ConfigValueType {
  kString,      // any scalar
  kInt,         // a decimal integer within [min, max]
  kBool,        // true or false
  kStringList,  // a list of scalars
  kPath,        // a path; relative paths are resolved against the config file's folder
  kFile,        // a kPath that must name an existing regular file when the config is loaded
  kDir,         // a kPath that must name an existing directory when the config is loaded
};

// "string", "integer", "bool", "list of strings", "path", "file", "directory".
const char* ConfigValueTypeName(ConfigValueType type);

struct ConfigKey {
  std::string path;  // dotted, e.g. "vendor.address"; every prefix ("vendor") is a section
  ConfigValueType type = ConfigValueType::kString;
  bool required = false;
  // Used when the file does not set the key, written as it would be in YAML ("30", "true",
  // "[]", "models"). Empty for a key that is required or simply absent when unset.
  std::string default_value;
  std::string doc;                                    // what the key means, in a sentence or two
  int64_t min = std::numeric_limits<int64_t>::min();  // kInt only
  int64_t max = std::numeric_limits<int64_t>::max();  // kInt only
  std::vector<std::string> one_of;  // kString only: when not empty, the only values accepted
};

// A key the format no longer has. A file that still sets it is refused with `advice` (what
// replaces it and why), not with a bare "unknown key": an old setting must never be silently
// dropped, nor leave the operator guessing.
struct RetiredConfigKey {
  std::string path;    // dotted, as it was declared
  std::string advice;  // one sentence, e.g. "replaced by `x.y` (...)"
};

class ConfigSchema {
 public:
  // `title` names the file in help text, e.g. "partner_node configuration".
  ConfigSchema(std::string title, std::vector<ConfigKey> keys);

  // Adds another component's keys (its own section). REQUIRES: no path is declared twice and
  // no key is also a section.
  void Add(const std::vector<ConfigKey>& keys);

  // Declares keys that were removed from the format. REQUIRES: none of them is a current key
  // or section.
  void Retire(const std::vector<RetiredConfigKey>& keys);

  // The key declared at `path`, or nullptr.
  const ConfigKey* Find(std::string_view path) const;
  // The retired key at `path`, or nullptr.
  const RetiredConfigKey* FindRetired(std::string_view path) const;
  // True when `path` is a strict prefix section of some key ("vendor" for "vendor.address").
  bool IsSection(std::string_view path) const;
  // The declared key closest to `path` by edit distance (at most max(3, length/4) edits), or
  // "".
  std::string ClosestKey(std::string_view path) const;

  const std::string& title() const { return title_; }
  const std::vector<ConfigKey>& keys() const { return keys_; }

  // Every key with its type, default or "required", and documentation; for `--help`.
  std::string HelpText() const;

 private:
  std::string title_;
  std::vector<ConfigKey> keys_;
  std::vector<RetiredConfigKey> retired_;
};

}  // namespace fedface
