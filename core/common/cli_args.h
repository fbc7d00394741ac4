// Command-line arguments of the fedface tools: `--name value`, `--name=value`, boolean `--name`,
// and positionals. Every flag must be declared; an unknown flag is an error, not a surprise.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedface {

class CliArgs {
 public:
  // value_flags take a value; switch_flags do not. Names are given without the leading "--".
  // Fails naming the first unknown flag or a value flag that lacks its value.
  static absl::StatusOr<CliArgs> Parse(const std::vector<std::string>& args,
                                       const std::set<std::string>& value_flags,
                                       const std::set<std::string>& switch_flags);

  bool Has(const std::string& name) const { return values_.count(name) || switches_.count(name); }
  // Last value given for the flag, or nullopt.
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  // Fails with "--name is required" when absent.
  absl::StatusOr<std::string> Require(const std::string& name) const;
  // Parses an integer flag; fails naming the flag on a non-number or a value out of [lo, hi].
  absl::StatusOr<long> GetInt(const std::string& name, long fallback, long lo, long hi) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> switches_;
  std::vector<std::string> positionals_;
};

}  // namespace fedface
