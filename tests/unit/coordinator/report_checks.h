// Checks of written report files that unit and integration tests share: report.json against
// docs/report_schema.json (python3-jsonschema), report.html in headless Chromium.
#pragma once

#include <cstdint>
#include <string>

namespace fedface::vendor::testing {

// "" when `json_path` validates against docs/report_schema.json (Draft 2020-12); else python's
// account of the first errors (or why it could not run).
std::string SchemaErrors(const std::string& json_path);

struct ChromiumRender {
  int exit_code = -1;
  std::string log;     // Chromium's stderr (console messages appear as ":CONSOLE(" lines)
  std::string png;     // the screenshot's bytes ("" when none was written)
  uint32_t width = 0;  // from the PNG header
  uint32_t height = 0;
};

// Renders file://html_path in headless Chromium at 1200x2000 and writes png_path.
ChromiumRender RenderWithChromium(const std::string& html_path, const std::string& png_path);

// True when /usr/bin/chromium exists.
bool HaveChromium();

}  // namespace fedface::vendor::testing
