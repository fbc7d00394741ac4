// Run only by the ctest entry ci_skip_is_a_failure (never on its own): a test that skips the raw
// gtest way. Under CI=true the test main (tests/support/test_main.cc) must turn the skip into a
// prompt failure naming the test, not pass it and not hang.
#include <gtest/gtest.h>

TEST(CiSkipProbe, SkipsTheRawGtestWay) { GTEST_SKIP() << "the probe's own skip"; }
