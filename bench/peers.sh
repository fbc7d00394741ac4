#!/usr/bin/env bash
# fedface against the peer a user would pick, in one invocation on the same machine and photos:
# face-api.js (@vladmandic/face-api, same dlib ResNet weights) on tfjs-backend-wasm (SIMD, one
# thread per process) under Node. Installs the pinned npm packages into the git-ignored cache,
# runs build/bench/engine_bench --json (which writes 1920x1080 copies of the sample photos), then
# bench/peers.js: descriptor faces/s with 1 and 2 processes, full-pipeline photos/s with 1 and 2
# processes on the same photos. Prints one JSON object with both sides and the ratios.
#
# Figures: wall-clock rates (what this run saw) and CPU ms per item (what the work costs, robust
# to other load on the machine). face-api's pipeline excludes JPEG decoding (Node has no decoder
# in tfjs; it reads the raw RGB that engine_bench decoded); fedface's includes it.
#
#   bench/peers.sh [--quick]     (FEDFACE_BUILD_DIR selects the build, default ./build)
set -euo pipefail

readonly FACEAPI_VERSION="1.7.15"
readonly TFJS_VERSION="4.22.0"

root=$(cd "$(dirname "$0")/.." && pwd)
build=${FEDFACE_BUILD_DIR:-$root/build}
cache_root=${FEDFACE_CACHE:-$root/.cache}
peers="$cache_root/peers-faceapi-$FACEAPI_VERSION-tfjs-$TFJS_VERSION"
chips=64 rounds=4 repeat=3
if [ "${1:-}" = "--quick" ]; then chips=16 rounds=1 repeat=1; fi

command -v node >/dev/null || { echo "peers: node is missing; run scripts/setup.sh" >&2; exit 1; }
[ -x "$build/bench/engine_bench" ] || { echo "peers: $build/bench/engine_bench is missing; run scripts/build.sh" >&2; exit 1; }

if [ ! -f "$peers/.complete" ]; then
  mkdir -p "$peers"
  echo "peers: installing @vladmandic/face-api@$FACEAPI_VERSION, @tensorflow/tfjs{,-backend-wasm}@$TFJS_VERSION into $peers" >&2
  # --ignore-scripts: nothing from the registry runs at install time.
  npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$peers" \
    "@vladmandic/face-api@$FACEAPI_VERSION" "@tensorflow/tfjs@$TFJS_VERSION" \
    "@tensorflow/tfjs-backend-wasm@$TFJS_VERSION" >&2
  touch "$peers/.complete"
fi
cp "$root/bench/peers.js" "$peers/peers.js"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "peers: fedface engine_bench --json" >&2
"$build/bench/engine_bench" --json --repeat "$repeat" >"$work/fedface.json"
photos_dir=$(node -e 'console.log(require(process.argv[1]).photos_dir)' "$work/fedface.json")

# $1 = output prefix, $2 = processes, rest = peers.js arguments
run_peer() {
  local name=$1 procs=$2
  shift 2
  local pids=()
  for i in $(seq "$procs"); do
    node "$peers/peers.js" "$@" >"$work/$name.$i.json" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
}
echo "peers: face-api.js descriptors, 1 and 2 processes" >&2
run_peer desc1 1 descriptors "$chips"
run_peer desc2 2 descriptors "$chips"
echo "peers: face-api.js full pipeline, 1 and 2 processes" >&2
run_peer pipe1 1 pipeline "$photos_dir" "$rounds"
run_peer pipe2 2 pipeline "$photos_dir" "$rounds"

node - "$work" <<'EOF'
const fs = require('fs');
const dir = process.argv[2];
const read = (f) => JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8'));
const sum = (name, n) => [...Array(n).keys()].map((i) => read(`${name}.${i + 1}.json`));
const total = (runs) => runs.reduce((s, r) => s + r.rate, 0);
const mean = (runs, k) => runs.reduce((s, r) => s + r[k], 0) / runs.length;
const fedface = read('fedface.json');
const d1 = sum('desc1', 1), d2 = sum('desc2', 2), p1 = sum('pipe1', 1), p2 = sum('pipe2', 2);
const faceapi = {
  versions: { '@vladmandic/face-api': '1.7.15', tfjs: d1[0].tfjs, backend: d1[0].backend,
    wasm_threads_per_process: d1[0].wasm_threads },
  descriptor_faces_per_s: { 1: total(d1), 2: total(d2) },
  descriptor_cpu_ms_per_face: mean(d2, 'cpu_ms_per_item'),
  pipeline_photos_per_s: { 1: total(p1), 2: total(p2) },
  pipeline_cpu_ms_per_photo: mean(p2, 'cpu_ms_per_item'),
  pipeline_faces_per_photo: mean(p2, 'faces_per_photo'),
  pipeline_note: 'tiny face detector (input 416) + 68 landmarks + descriptors; excludes JPEG decoding',
};
const ratios = {
  pipeline_photos_per_s_2: fedface.pipeline_photos_per_s / faceapi.pipeline_photos_per_s[2],
  pipeline_cpu_per_photo: faceapi.pipeline_cpu_ms_per_photo / fedface.pipeline_cpu_ms_per_photo,
};
if (fedface.embedding_faces_per_s) {  // per backend: {"dlib": {"1": x, "2": y}, ...}
  ratios.embedding_faces_per_s = {};
  for (const [backend, rates] of Object.entries(fedface.embedding_faces_per_s)) {
    ratios.embedding_faces_per_s[backend] = {
      1: rates['1'] / faceapi.descriptor_faces_per_s[1],
      2: rates['2'] / faceapi.descriptor_faces_per_s[2],
    };
  }
}
const load = require('os').loadavg();
console.log(JSON.stringify({ machine: { cpus: require('os').cpus().length,
  model: require('os').cpus()[0].model, loadavg_1min_at_end: load[0] },
fedface, faceapi, ratios_fedface_over_faceapi: ratios }, null, 2));
EOF
