// Paths the tests get from ctest's environment (see tests/CMakeLists.txt), and skips for data
// that may be absent on a machine that only has the project.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace fedface::testing {

// Value of the environment variable, or "" when unset.
// Value of the environment variable, else its build-time default (see tests/CMakeLists.txt).
std::string Env(const char* name);

// ../shared/datasets, or "" when the folder is absent.
std::string DatasetsDir();

// The fetched face-api folder (model/, demo/), or "" when absent.
std::string FaceApiDir();

// The signed test package and its vendor key made by the fixture, or "" when absent.
std::string TestPackageDir();
std::string TestVendorKey();  // private key path; the public key is this path + ".pub"

// A fresh empty directory under the test's temporary root, removed by nobody (kept as artefact).
std::string MakeTempDir(const std::string& prefix);

}  // namespace fedface::testing

// Skips the current test with a message when `path` is empty.
#define FEDFACE_SKIP_IF_MISSING(path, what)                                   \
  do {                                                                        \
    if ((path).empty()) GTEST_SKIP() << what << " is absent; skipping test";  \
  } while (0)
