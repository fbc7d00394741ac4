// main() of every test binary: GoogleTest, plus the rule that under CI=true a
// skip is a failure.
//
// A green CI run must mean that every check ran: a test that cannot run here
// (no tcpdump, no network namespaces, no Chromium, no ../shared/datasets) skips
// on a developer's machine but fails under CI=true. Tests say so through
// FEDFACE_SKIP_OR_FAIL (test_env.h), which fails with the reason; this listener
// is the backstop for any other GTEST_SKIP: it prints the reason and ends the
// binary with exit code 1 at once (GoogleTest cannot turn a skip into a failure
// from a listener: it holds its own lock while reporting).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "tests/support/test_env.h"

namespace {

class SkipIsAFailureUnderCi : public ::testing::EmptyTestEventListener {
  // The test is remembered here: gtest calls OnTestPartResult holding the lock that
  // UnitTest::current_test_info() takes, so asking there hung every skip until ctest's timeout.
  void OnTestStart(const ::testing::TestInfo& test) override { current_ = &test; }
  void OnTestEnd(const ::testing::TestInfo&) override { current_ = nullptr; }

  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.type() != ::testing::TestPartResult::kSkip) return;
    const ::testing::TestInfo* test = current_;
    std::cout << "[  FAILED  ] " << (test ? test->test_suite_name() : "") << "."
              << (test ? test->name() : "") << ": skipped under CI=true, where every check must "
              << "run: " << result.message() << std::endl;
    std::fflush(nullptr);
    _exit(1);
  }

  const ::testing::TestInfo* current_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (fedface::testing::CiRequiresEveryCheck()) {
    ::testing::UnitTest::GetInstance()->listeners().Append(new SkipIsAFailureUnderCi);
  }
  const int result = RUN_ALL_TESTS();
  fedface::testing::CleanUpTempDirs(result);
  return result;
}
