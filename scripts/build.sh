#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm model) and builds everything.
# Prints nothing but progress; the build folder is $FEDFACE_BUILD_DIR or ./build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash scripts/fetch_model.sh >/dev/null
build=${FEDFACE_BUILD_DIR:-$root/build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
