#include "tests/support/test_env.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <vector>

namespace fedface::testing {
namespace {

std::string ExistingDir(const std::string& path) {
  std::error_code ec;
  return (!path.empty() && std::filesystem::is_directory(path, ec)) ? path : "";
}

// Build-time defaults for the variables tests/CMakeLists.txt defines.
const char* CompiledDefault(const std::string& name) {
  static const std::pair<const char*, const char*> kDefaults[] = {
      {"FEDFACE_SOURCE_DIR", DEFAULT_FEDFACE_SOURCE_DIR},
      {"FEDFACE_BINARY_DIR", DEFAULT_FEDFACE_BINARY_DIR},
      {"FEDFACE_DATASETS", DEFAULT_FEDFACE_DATASETS},
      {"FEDFACE_FACEAPI_DIR", DEFAULT_FEDFACE_FACEAPI_DIR},
      {"FEDFACE_TEST_PACKAGE", DEFAULT_FEDFACE_TEST_PACKAGE},
      {"FEDFACE_TEST_VENDOR_KEY", DEFAULT_FEDFACE_TEST_VENDOR_KEY},
      {"FEDFACE_PARTNER_NODE", DEFAULT_FEDFACE_PARTNER_NODE},
      {"FEDFACE_MODEL_VENDOR", DEFAULT_FEDFACE_MODEL_VENDOR},
  };
  for (const auto& [key, value] : kDefaults) {
    if (name == key) return value;
  }
  return "";
}

// Folders MakeTempDir made in this process (tests may make them from several threads).
std::mutex temp_dirs_mutex;
std::vector<std::string>& temp_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

}  // namespace

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : CompiledDefault(name);
}

std::string DatasetsDir() { return ExistingDir(Env("FEDFACE_DATASETS")); }

std::string FaceApiDir() {
  const std::string dir = ExistingDir(Env("FEDFACE_FACEAPI_DIR"));
  return std::filesystem::exists(dir + "/.complete") ? dir : "";
}

std::string TestPackageDir() { return ExistingDir(Env("FEDFACE_TEST_PACKAGE")); }

std::string TestVendorKey() {
  const std::string key = Env("FEDFACE_TEST_VENDOR_KEY");
  return std::filesystem::exists(key) ? key : "";
}

bool CiRequiresEveryCheck() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

void RecordCheckMode(const std::string& mode) {
  const std::string build = Env("FEDFACE_BINARY_DIR");
  if (build.empty()) return;
  const std::string dir = build + "/test_artifacts";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::ofstream out(dir + "/check_modes.txt", std::ios::app);
  out << (test ? std::string(test->test_suite_name()) + "." + test->name() : "(no test)") << ": "
      << mode << "\n";
}

std::string MakeTempDir(const std::string& prefix) {
  std::string base = Env("TEST_TMPDIR");
  if (base.empty()) base = std::filesystem::temp_directory_path().string();
  std::string templ = base + "/fedface-" + prefix + "-XXXXXX";
  char* made = mkdtemp(templ.data());
  if (made == nullptr) return "";
  const std::lock_guard<std::mutex> lock(temp_dirs_mutex);
  temp_dirs().push_back(made);
  return made;
}

void CleanUpTempDirs(int run_all_tests_result) {
  const std::lock_guard<std::mutex> lock(temp_dirs_mutex);
  std::vector<std::string>& dirs = temp_dirs();
  if (dirs.empty()) return;
  if (run_all_tests_result != 0 || Env("FEDFACE_KEEP_TEST_DIRS") == "1") {
    std::cout << "kept " << dirs.size() << " temporary folder(s) to inspect, e.g. " << dirs.front()
              << "\n";
    return;
  }
  for (const std::string& dir : dirs) {
    std::error_code ec;  // a folder a child still writes to is best effort, never a failure
    std::filesystem::remove_all(dir, ec);
  }
  dirs.clear();
}

}  // namespace fedface::testing
