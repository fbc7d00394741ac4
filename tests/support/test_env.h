// Paths the tests get from ctest's environment (see tests/CMakeLists.txt), and skips for data
// that may be absent on a machine that only has the project.
#pragma once

#include <gtest/gtest.h>

#include <string>

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

// A fresh empty directory under the test's temporary root. Removed when the test binary ends
// with every test passed; kept (as an artefact to inspect) when a test failed or when
// FEDFACE_KEEP_TEST_DIRS=1. A full run made ~10,000 of them (tens of GB) when none was removed.
std::string MakeTempDir(const std::string& prefix);

// Called by test_main after RUN_ALL_TESTS with its exit code: removes the directories
// MakeTempDir made in this process when the run passed, else names where they were kept.
void CleanUpTempDirs(int run_all_tests_result);

// True when the environment says CI=true: then a missing capability (tcpdump, network
// namespaces, tshark, Chromium, a dataset) fails the test that needs it instead of skipping it.
bool CiRequiresEveryCheck();

// Appends "Suite.Test: `mode`" to BUILD/test_artifacts/check_modes.txt, which scripts/test.sh
// prints after a green run: how a check ran (e.g. an audit in network namespaces over mutual TLS,
// or on loopback in plaintext), so a green run says what it proved.
void RecordCheckMode(const std::string& mode);

}  // namespace fedface::testing

// Skips the current test with `message`, or fails it under CI=true (see CiRequiresEveryCheck).
// Only where the test cannot check what it claims: never as a way to pass.
#define FEDFACE_SKIP_OR_FAIL(message)                                                 \
  do {                                                                                \
    if (::fedface::testing::CiRequiresEveryCheck()) {                                 \
      GTEST_FAIL() << message << " (CI=true: every check must run; scripts/setup.sh " \
                   << "installs what the tests need)";                                \
    }                                                                                 \
    GTEST_SKIP() << message;                                                          \
  } while (0)

// Skips (or fails under CI=true) the current test with a message when `path` is empty.
#define FEDFACE_SKIP_IF_MISSING(path, what)                         \
  do {                                                              \
    if ((path).empty()) FEDFACE_SKIP_OR_FAIL(what << " is absent"); \
  } while (0)
