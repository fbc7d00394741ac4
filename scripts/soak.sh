#!/usr/bin/env bash
# Soak test of issue 16, bounded in time, loopback only:
#   scripts/soak.sh [MINUTES]        (default 10; FEDFACE_BUILD_DIR picks the build folder)
# Builds partner_node, model_vendor and the soak driver (tests/integration/soak/partner_soak.cc),
# makes the signed test package when missing, then runs one `partner_node serve` for MINUTES
# under valid vendor calls, local enrol/identify and hostile traffic together. It prints, per
# interval, the partner's RSS, peak RSS, open files and CPU, the p50/p99 latency and status
# counts of the valid calls, and the hostile rounds; it exits non-zero when valid calls stopped
# being answered, the RSS kept growing, or a reply or an enrolled subject was lost.
# Knobs (environment): FEDFACE_SOAK_INTERVAL_SECONDS (60), FEDFACE_SOAK_MAX_RSS_GROWTH_MIB (512),
# FEDFACE_SOAK_FLOOD_CONNECTIONS (1100, against the partner's 1024 descriptors),
# FEDFACE_SOAK_RESETS_PER_ROUND (10000 HEADERS+RST_STREAM pairs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
minutes=${1:-10}
if ! [[ "$minutes" =~ ^[1-9][0-9]*$ ]]; then
  echo "soak: MINUTES must be a positive integer, got '$minutes'" >&2
  exit 2
fi
build=${FEDFACE_BUILD_DIR:-$root/build}
if [ ! -f "$build/build.ninja" ]; then
  FEDFACE_BUILD_DIR="$build" bash scripts/build.sh
fi
cmake --build "$build" -j"$(nproc)" --target partner_node model_vendor partner_soak >/dev/null

export FEDFACE_SOURCE_DIR="$root" FEDFACE_BINARY_DIR="$build"
export FEDFACE_DATASETS="$root/../shared/datasets" FEDFACE_FACEAPI_DIR="$root/.cache/face-api-1.7.15"
export FEDFACE_TEST_PACKAGE="$build/test_fixtures/package"
export FEDFACE_TEST_VENDOR_KEY="$build/test_fixtures/vendor_key"
export FEDFACE_PARTNER_NODE="$build/partner_node/partner_node"
export FEDFACE_MODEL_VENDOR="$build/model_vendor/model_vendor"
bash tests/support/make_test_package.sh >/dev/null  # the signed test package (kept when fresh)
export FEDFACE_SOAK_MINUTES="$minutes"
# CI=true: missing data is a failure, never a silent skip.
CI=true exec "$build/tests/integration/soak/partner_soak"
