#!/usr/bin/env bash
# Sets up everything (Debian packages, the npm model), builds, and runs the whole test suite.
#   scripts/test.sh            full run (two tests at a time: ctest -j2)
#   scripts/test.sh -R REGEX   only the tests whose names match (passed to ctest)
# A full run then fuzzes: scripts/fuzz.sh builds the libFuzzer targets (clang, ASan + UBSan, a
# build folder of their own) and runs each for FEDFACE_FUZZ_SECONDS (default 60); a finding fails
# the run.
# Under CI=true every check must run: a test that cannot (no tcpdump, no network namespaces, no
# Chromium, no ../shared/datasets) fails instead of skipping, and the run fails if ctest reports
# any skipped or not-run test. On success it prints how each audit ran and the time taken.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
# Under CI a compiler warning in project code is an error (-Werror), so the build stays quiet.
if [ "${CI:-}" = true ]; then export FEDFACE_WERROR=${FEDFACE_WERROR:-ON}; fi
bash scripts/build.sh
build=${FEDFACE_BUILD_DIR:-$root/build}
ci=${CI:-}
if [ ! -d ../shared/datasets ]; then
  if [ "$ci" = true ]; then
    echo "test: ../shared/datasets is absent; under CI=true every test that needs it must run" >&2
    exit 1
  fi
  echo "test: ../shared/datasets is absent; tests that need real face sets will skip"
fi
mkdir -p "$build/test_artifacts"
rm -f "$build/test_artifacts/check_modes.txt"
log="$build/test_artifacts/ctest.log"
status=0
ctest --test-dir "$build" --output-on-failure --timeout 1200 -j"${FEDFACE_TEST_JOBS:-2}" "$@" \
  2>&1 | tee "$log" || status=$?
# ctest exits 0 when tests are skipped; a skip means a check did not run.
if grep -qE "\(Skipped\)|\(Not Run\)|\(Disabled\)" "$log"; then
  echo "test: some tests did not run:" >&2
  grep -E "\(Skipped\)|\(Not Run\)|\(Disabled\)" "$log" >&2
  [ "$ci" = true ] && status=1
fi
if [ "$status" -eq 0 ] && [ -s "$build/test_artifacts/check_modes.txt" ]; then
  echo "test: how the capture-based audits ran:"
  sort -u "$build/test_artifacts/check_modes.txt" | sed 's/^/  /'
fi
if [ $# -eq 0 ]; then
  fuzz_start=$(date +%s)
  bash scripts/fuzz.sh --seconds "${FEDFACE_FUZZ_SECONDS:-60}" || status=1
  echo "test: fuzzing took $(( $(date +%s) - fuzz_start )) s"
fi
echo "test: $(( $(date +%s) - start )) s in all (set-up, build, tests and fuzzing)"
exit "$status"
