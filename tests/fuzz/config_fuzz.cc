// libFuzzer target for the strict YAML configuration parser (core/config/config_file.h) with a
// schema holding every value type, sections and a retired key: whatever the text, Parse returns
// a Config or a one-line error that names the source, and never throws or crashes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/config/config_file.h"

namespace {

using fedface::ConfigKey;
using fedface::ConfigSchema;
using T = fedface::ConfigValueType;

const ConfigSchema& Schema() {
  static const ConfigSchema* schema = [] {
    auto* s = new ConfigSchema(
        "fuzz configuration",
        {ConfigKey{.path = "vendor.address", .type = T::kString, .required = true},
         ConfigKey{.path = "vendor.port",
                   .type = T::kInt,
                   .default_value = "7543",
                   .min = 1,
                   .max = 65535},
         ConfigKey{.path = "vendor.tls", .type = T::kBool, .default_value = "true"},
         ConfigKey{.path = "vendor.allowed", .type = T::kStringList, .default_value = "[]"},
         ConfigKey{.path = "storage.dir", .type = T::kPath, .default_value = "data"},
         ConfigKey{.path = "storage.file", .type = T::kFile},
         ConfigKey{.path = "storage.folder", .type = T::kDir},
         ConfigKey{.path = "egress.limits.rate.window_seconds", .type = T::kInt, .min = 0}});
    s->Retire({{.path = "vendor.adress", .advice = "replaced by `vendor.address`"}});
    return s;
  }();
  return *schema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<fedface::Config> config =
      fedface::Config::Parse(yaml, "fuzz.yaml", "/nonexistent-fuzz-base", Schema());
  if (config.ok()) {
    (void)config->GetString("vendor.address");
    (void)config->GetInt("vendor.port");
    (void)config->GetBool("vendor.tls");
    (void)config->GetStringList("vendor.allowed");
    (void)config->GetPath("storage.dir");
  } else if (config.status().message().substr(0, 9) != "fuzz.yaml") {
    __builtin_trap();  // every error names the file
  }
  return 0;
}
