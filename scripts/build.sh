#!/usr/bin/env bash
# Installs what is missing (Debian packages, the npm model) and builds everything.
# Prints one progress line (on a terminal) and a summary; the full compiler output goes to
# BUILD/build.log and is printed only when the build fails. The build folder is
# $FEDFACE_BUILD_DIR or ./build.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh
bash scripts/fetch_model.sh >/dev/null
build=${FEDFACE_BUILD_DIR:-$root/build}
mkdir -p "$build"
log="$build/build.log"
start=$(date +%s)
# FEDFACE_WERROR=ON (scripts/test.sh under CI=true): any compiler warning in project code fails.
# Passed only when set, so that the demo after a CI-style test run does not flip the option and
# rebuild everything.
werror=()
if [ -n "${FEDFACE_WERROR:-}" ]; then werror=(-DFEDFACE_WERROR="$FEDFACE_WERROR"); fi
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${werror[@]}" \
    >"$log" 2>&1; then
  cat "$log" >&2
  echo "build: cmake failed (log above, also in $log)" >&2
  exit 1
fi
set +e
cmake --build "$build" -j"$(nproc)" 2>&1 | tee -a "$log" | {
  if [ -t 1 ]; then
    while IFS= read -r line; do
      case $line in \[*) printf '\rbuild: %s ' "${line%% *}" ;; esac
    done
    printf '\n'
  else
    cat >/dev/null
  fi
}
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  cat "$log" >&2
  echo "build: FAILED (full log above, also in $log)" >&2
  exit 1
fi
warnings=$(grep -c "warning:" "$log" || true)
echo "build: done in $(( $(date +%s) - start )) s, $warnings compiler warning(s) (log: $log)"
