// A strict YAML configuration file, checked against a ConfigSchema when it is loaded so that
// every mistake is a clear start-up error rather than a surprise later:
//   "partner.yaml:7:3: unknown key 'vendor.adress' (did you mean 'vendor.address'?)"
//   "partner.yaml:9:14: model_cache.rpc_deadline_seconds: expected an integer, got 'soon'"
//   "partner.yaml: missing required key 'vendor.address'"
//   "partner.yaml:4:12: vendor.ca_cert: /etc/fedface/ca.crt: no such file"
// Every problem found is reported, joined with "; " on one line.
//
// Thread safety: a loaded Config is immutable; const methods may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config/config_schema.h"

namespace fedface {

// A checked value: kString and the path types hold a string (paths absolute), kInt an int64_t,
// kBool a bool, kStringList a vector.
using ConfigValue = std::variant<std::string, int64_t, bool, std::vector<std::string>>;

class Config {
 public:
  // Reads `path` (at most 1 MiB) and checks it against `schema`: unknown keys, duplicate keys,
  // wrong types, integers out of range, missing required keys, kFile/kDir paths that do not
  // exist. Defaults fill the keys the file leaves out. Errors start with the file name.
  static absl::StatusOr<Config> Load(const std::string& path, const ConfigSchema& schema);

  // As Load, from text. `source` names the text in errors; relative paths resolve against
  // `base_dir`.
  static absl::StatusOr<Config> Parse(std::string_view yaml, const std::string& source,
                                      const std::string& base_dir, const ConfigSchema& schema);

  // Typed values. REQUIRE: `path` is declared in the schema with a matching type (a mismatch is
  // a programming error and aborts with the key's name). A key that is neither set nor
  // defaulted reads as "", 0, false or an empty list.
  std::string GetString(std::string_view path) const;  // kString
  std::string GetPath(std::string_view path) const;    // kPath/kFile/kDir: absolute, normalised
  int64_t GetInt(std::string_view path) const;
  bool GetBool(std::string_view path) const;
  std::vector<std::string> GetStringList(std::string_view path) const;

  // True when the file itself sets `path` (not a default).
  bool IsSet(std::string_view path) const { return set_in_file_.count(std::string(path)) > 0; }

  // The file the values came from (as given to Load) and the schema's title.
  const std::string& source() const { return source_; }

 private:
  using Value = ConfigValue;
  const Value* Lookup(std::string_view path, ConfigValueType want) const;

  std::string source_;
  std::map<std::string, ConfigValueType, std::less<>> types_;  // so a Config outlives its schema
  std::map<std::string, Value, std::less<>> values_;
  std::set<std::string, std::less<>> set_in_file_;
};

}  // namespace fedface
