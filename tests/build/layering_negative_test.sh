#!/usr/bin/env bash
# The include check must fail on a wrong-way include: a copy of the source tree where
# partner_node/egress (below serve) includes a serve header. Usage: SOURCE LAYERS
set -euo pipefail
source_dir=$1
layers=$2
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for top in core partner_node model_vendor; do cp -r "$source_dir/$top" "$scratch/"; done
victim=$scratch/partner_node/egress/egress_guard.cc
sed -i '0,/^#include "partner_node\/egress/s//#include "partner_node\/serve\/serve_config.h"\n&/' "$victim"
grep -q 'partner_node/serve/serve_config.h' "$victim" || { echo "could not inject the include"; exit 1; }
if out=$(python3 "$source_dir/scripts/check_layering.py" --layers "$layers" --source "$scratch"); then
  echo "FAIL: the wrong-way include was not caught"; echo "$out"; exit 1
fi
grep -q 'partner_node/egress/egress_guard.cc:.*includes partner_node/serve/serve_config.h' <<< "$out" \
  || { echo "FAIL: caught, but not named: $out"; exit 1; }
echo "caught: $(head -1 <<< "$out")"
