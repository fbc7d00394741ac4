#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, a build folder of their own:
# only the sources each target needs) and runs each for a fixed time, two at a time.
#   scripts/fuzz.sh                 every target, 60 s each (what CI runs, via scripts/test.sh)
#   scripts/fuzz.sh --seconds 3600  longer
#   scripts/fuzz.sh --only config_fuzz --seconds 600
# Corpora: build-fuzz/corpus/<target>, seeded from tests/fuzz/seeds/<target> (small, committed)
# and from what the test suite left in the main build folder (audit captures, configuration
# files, model package manifests, images), and kept between runs. A crash, leak, sanitizer report
# or timeout fails the run; its input is in build-fuzz/findings/<target>/ (turn it into a seed
# and a unit test once fixed). Prints executions per second and coverage per target.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=60
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "fuzz: unknown argument '$1' (--seconds N, --only TARGET)" >&2; exit 2 ;;
  esac
done
command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (scripts/setup.sh installs clang)" >&2; exit 1; }
build=${FEDFACE_BUILD_DIR:-$root/build}
fuzz=${FEDFACE_FUZZ_DIR:-$root/build-fuzz}
start=$(date +%s)
mkdir -p "$fuzz"
if [ ! -f "$fuzz/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S tests/fuzz -B "$fuzz" -G Ninja >"$fuzz/configure.log" 2>&1 ||
    { cat "$fuzz/configure.log" >&2; exit 1; }
fi
cmake --build "$fuzz" -j"${FEDFACE_FUZZ_JOBS:-2}" >"$fuzz/build.log" 2>&1 ||
  { tail -50 "$fuzz/build.log" >&2; echo "fuzz: build failed (log: $fuzz/build.log)" >&2; exit 1; }
built=$(date +%s)

# Seeds: committed ones, then what the tests produced (small files only).
seed() {  # target, files...
  local target=$1; shift
  mkdir -p "$fuzz/corpus/$target"
  for f in "$@"; do [ -f "$f" ] && cp -n "$f" "$fuzz/corpus/$target/seed-$(sha256sum "$f" | cut -c1-16)"; done
  return 0
}
small() { [ -d "$1" ] && find "$1" -type f -name "$2" -size -"$3" 2>/dev/null | sort | head -n "$4"; return 0; }
while read -r t; do seed "$t" tests/fuzz/seeds/"$t"/*; done <"$fuzz/targets.txt"
"$fuzz/traffic_audit_seeds" "$fuzz/corpus/traffic_audit_fuzz"  # crafted captures
mapfile -t pcaps < <(small "$build/test_artifacts" '*.pcap' 64k 20)
seed traffic_audit_fuzz "${pcaps[@]}"
mapfile -t yamls < <(small "$build/test_artifacts" '*.yaml' 8k 20)
seed config_fuzz "${yamls[@]}"
mapfile -t images < <({ small "$build/test_fixtures" '*.png' 64k 10; small .cache '*.jpg' 512k 3; })
seed image_header_fuzz "${images[@]}"
# model_package_fuzz: first byte even = manifest.json, odd = tfjs manifest '\0' weight bytes.
mkdir -p "$fuzz/corpus/model_package_fuzz"
for m in $(small "$build/test_fixtures" manifest.json 64k 2); do
  { printf '\x00'; cat "$m"; } >"$fuzz/corpus/model_package_fuzz/seed-manifest-$(sha256sum "$m" | cut -c1-16)"
done
tfjs=.cache/face-api-1.7.15/model/face_recognition_model-weights_manifest.json
[ -f "$tfjs" ] && { printf '\x01'; cat "$tfjs"; printf '\x00'; } >"$fuzz/corpus/model_package_fuzz/seed-tfjs"
# vendor_request_fuzz: requests as a vendor sends them (binary protobuf).
for text in 'round_id: "r1" model_version: "1.0.0" protocol: EVALUATION_PROTOCOL_VERIFICATION seed: 7' \
  'round_id: "round-2_b" model_version: "2.0.0+x" protocol: EVALUATION_PROTOCOL_IDENTIFICATION non_mated_sample_size: 1000'; do
  echo "$text" | protoc --proto_path=proto --encode=fedface.v1.RunEvaluationRequest \
    proto/fedface/v1/evaluation.proto >"$fuzz/corpus/vendor_request_fuzz/seed-$(echo "$text" | sha256sum | cut -c1-16)" ||
    { echo "fuzz: protoc could not encode a seed request" >&2; exit 1; }
done

# Per target: the largest input worth trying (the audit reads whole captures; headers are short).
max_len() {
  case "$1" in
    traffic_audit_fuzz) echo 65536 ;; image_header_fuzz) echo 4096 ;; vendor_request_fuzz) echo 512 ;;
    *) echo 16384 ;;
  esac
}
run() {  # target
  local t=$1 dir="$fuzz/findings/$1"
  mkdir -p "$dir" "$fuzz/logs" "$fuzz/tmp"
  TMPDIR="$fuzz/tmp" "$fuzz/$t" "$fuzz/corpus/$t" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
    -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/" \
    >"$fuzz/logs/$t.log" 2>&1
}
status=0
pids=()
names=()
while read -r t; do
  [ -n "$only" ] && [ "$t" != "$only" ] && continue
  run "$t" & pids+=($!); names+=("$t")
  if [ ${#pids[@]} -ge "${FEDFACE_FUZZ_JOBS:-2}" ]; then
    wait "${pids[0]}" || { echo "fuzz: ${names[0]} FAILED (log: $fuzz/logs/${names[0]}.log)" >&2; status=1; }
    pids=("${pids[@]:1}"); names=("${names[@]:1}")
  fi
done <"$fuzz/targets.txt"
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "fuzz: ${names[$i]} FAILED (log: $fuzz/logs/${names[$i]}.log)" >&2; status=1; }
done

printf '%-22s %10s %8s %8s %8s %8s\n' target runs exec/s cov ft corpus
while read -r t; do
  [ -n "$only" ] && [ "$t" != "$only" ] && continue
  log="$fuzz/logs/$t.log"
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  printf '%-22s %10s %8s %8s %8s %8s\n' "$t" \
    "$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
    "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")" \
    "$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')" \
    "$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')" \
    "$(ls "$fuzz/corpus/$t" | wc -l)"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    grep -m3 -E 'ERROR:|runtime error:' "$log" >&2
    status=1
  fi
done <"$fuzz/targets.txt"
echo "fuzz: build $((built - start)) s, runs $(($(date +%s) - built)) s"
exit "$status"
