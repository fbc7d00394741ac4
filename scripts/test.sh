#!/usr/bin/env bash
# Sets up everything (Debian packages, the npm model), builds, and runs the whole test suite.
#   scripts/test.sh            full run
#   scripts/test.sh -R REGEX   only the tests whose names match (passed to ctest)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh
build=${FEDFACE_BUILD_DIR:-$root/build}
if [ ! -d ../shared/datasets ]; then
  echo "test: ../shared/datasets is absent; tests that need real face sets will skip"
fi
ctest --test-dir "$build" --output-on-failure --timeout 900 "$@"
