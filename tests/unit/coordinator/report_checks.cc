#include "tests/unit/coordinator/report_checks.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/child_process.h"
#include "tests/support/test_env.h"

namespace fedface::vendor::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint32_t BigEndian32(const std::string& b, std::size_t at) {
  uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(b[at + i]);
  return v;
}

}  // namespace

std::string SchemaErrors(const std::string& json_path) {
  const std::string schema =
      fedface::testing::Env("FEDFACE_SOURCE_DIR") + "/docs/report_schema.json";
  const fedface::testing::ProcessResult r = fedface::testing::RunProcess(
      {"/usr/bin/python3", "-c",
       "import json, sys, jsonschema\n"
       "schema = json.load(open(sys.argv[1]))\n"
       "jsonschema.Draft202012Validator.check_schema(schema)\n"
       "errors = list(jsonschema.Draft202012Validator(schema).iter_errors("
       "json.load(open(sys.argv[2]))))\n"
       "for e in errors[:5]: print(list(e.absolute_path), e.message[:300])\n"
       "sys.exit(1 if errors else 0)\n",
       schema, json_path});
  if (r.exit_code == 0) return "";
  return "exit " + std::to_string(r.exit_code) + "\n" + r.out + r.err;
}

bool HaveChromium() { return std::filesystem::exists("/usr/bin/chromium"); }

ChromiumRender RenderWithChromium(const std::string& html_path, const std::string& png_path) {
  std::filesystem::remove(png_path);
  const std::string profile = fedface::testing::MakeTempDir("chromium-profile");
  const fedface::testing::ProcessResult r = fedface::testing::RunProcess(
      {"/usr/bin/timeout", "180", "/usr/bin/chromium", "--headless", "--no-sandbox",
       "--disable-gpu", "--disable-background-networking", "--disable-component-update",
       "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
       "--user-data-dir=" + profile, "--screenshot=" + png_path, "--window-size=1200,2000",
       "file://" + html_path});
  ChromiumRender out;
  out.exit_code = r.exit_code;
  out.log = r.err;
  if (std::filesystem::exists(png_path)) out.png = ReadAll(png_path);
  if (out.png.size() >= 24 && out.png.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0) {
    out.width = BigEndian32(out.png, 16);
    out.height = BigEndian32(out.png, 20);
  }
  std::error_code ec;
  std::filesystem::remove_all(profile, ec);
  return out;
}

}  // namespace fedface::vendor::testing
