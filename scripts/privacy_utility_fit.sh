#!/usr/bin/env bash
# Measures genuine and impostor distances on ../shared/datasets/faceapi-bbt (all pairs of its
# gallery, the npm face-api weights) with `partner_node evaluate --gallery --json`, and writes the
# normal fit bench/privacy_utility reads: mean = measured mean, s.d. = (p95 - p5) / 3.29.
#
#   scripts/privacy_utility_fit.sh [OUT]   (default bench/privacy_utility_fit.txt)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FEDFACE_BUILD_DIR:-$root/build}
out=${1:-$root/bench/privacy_utility_fit.txt}
gallery="$root/../shared/datasets/faceapi-bbt/gallery"
[ -d "$gallery" ] || { echo "privacy_utility_fit: no gallery at $gallery" >&2; exit 1; }
faceapi=$(bash "$root/scripts/fetch_model.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$build/model_vendor/model_vendor" keygen --out "$work/key" >/dev/null
"$build/model_vendor/model_vendor" package --faceapi "$faceapi" --version 1.0.0 \
  --key "$work/key" --out "$work/pkg" >/dev/null
"$build/partner_node/partner_node" evaluate --model "$work/pkg" --vendor-key "$work/key.pub" --gallery "$gallery" --json \
  >"$work/eval.json"
python3 - "$work/eval.json" "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lines = ["# Written by scripts/privacy_utility_fit.sh: normal fit to the distances measured on",
         "# ../shared/datasets/faceapi-bbt (partner_node evaluate --gallery, all pairs).",
         "source faceapi-bbt gallery, all pairs, face-api 1.7.15 weights"]
for side, key in (("genuine", "mated_distances"), ("impostor", "non_mated_distances")):
    s = r[key]
    lines += [f"{side}_count {s['count']}", f"{side}_mean {s['mean']:.6f}",
              f"{side}_sd {(s['p95'] - s['p5']) / 3.2897:.6f}", f"{side}_p5 {s['p5']:.6f}",
              f"{side}_median {s['median']:.6f}", f"{side}_p95 {s['p95']:.6f}"]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
cat "$out"
