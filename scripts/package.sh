#!/usr/bin/env bash
# Builds the Debian packages fedface-partner and fedface-vendor into BUILD/packages/ (the build
# folder is $FEDFACE_BUILD_DIR or ./build): sets up and builds first, then `cpack -G DEB`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/build.sh
build=${FEDFACE_BUILD_DIR:-$root/build}
(cd "$build" && cpack -G DEB -B "$build/packages" >"$build/cpack.log" 2>&1) || {
  cat "$build/cpack.log" >&2
  echo "package: cpack failed (log above, also in $build/cpack.log)" >&2
  exit 1
}
for deb in "$build"/packages/fedface-*.deb; do
  echo "package: $deb ($(( $(stat -c %s "$deb") / 1024 )) KiB)"
done
