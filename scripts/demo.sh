#!/usr/bin/env bash
# The fedface demo, end to end on one machine:
#   vendor: keys, a signed model package, the model registry (mTLS), the coordinator;
#   partners: three galleries made from the npm sample photos (every detected face is a subject,
#   its extra captures SYNTHETIC variations), plus ../shared/datasets/faceapi-bbt (8 real
#   identities) as a fourth partner when that folder exists;
#   each partner pulls and verifies the model, enrols its gallery and serves the vendor;
#   one evaluation round, the pooled report, then a traffic audit of everything that left each
#   partner during the round.
# Sets up what is missing first. Everything lives in ./demo-run (recreated on every run); Ctrl-C
# stops every process it started.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/build.sh
build=${FEDFACE_BUILD_DIR:-$root/build}
faceapi=$(bash scripts/fetch_model.sh)
vendor_bin="$build/model_vendor/model_vendor"
partner_bin="$build/partner_node/partner_node"
run="$root/demo-run"

pids=()
cleanup() {
  local code=$?
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  exit "$code"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, stopping everything"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something listens on 127.0.0.1:$1 (at most ~60 s).
wait_port() {
  for _ in $(seq 1 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "demo: nothing listens on port $1" >&2
  return 1
}

rm -rf "$run"
mkdir -p "$run"/{registry,logs,pcap,report}

partners=(clinic-north bank-east photos-west)
with_bbt=false
if [ -d ../shared/datasets/faceapi-bbt/gallery ]; then
  partners+=(bbt-studio)
  with_bbt=true
fi

say "vendor: key pair, signed model package, certificates"
"$vendor_bin" keygen --out "$run/vendor_key"
"$vendor_bin" package --faceapi "$faceapi" --version 1.0.0 --key "$run/vendor_key" \
  --out "$run/registry/1.0.0"
# A development set: everything runs on this machine (loopback names in the server certificates).
bash scripts/make_certs.sh "$run/pki" --dev "${partners[@]}" >/dev/null

say "partners: galleries (capture0 = real face crop; capture1.. = SYNTHETIC variations)"
"$build/tests/tools/make_demo_galleries" --out "$run/galleries" \
  --partners clinic-north,bank-east,photos-west --captures 5 \
  --canaries "$run/canaries.txt" "$faceapi"/demo/sample*.jpg
if $with_bbt; then
  cp -r ../shared/datasets/faceapi-bbt/gallery "$run/galleries/bbt-studio"
  echo "bbt-studio: 8 real identities, 40 images from ../shared/datasets/faceapi-bbt"
fi

registry_port=$(free_port)
cat > "$run/vendor.yaml" <<EOF
server:
  listen: "127.0.0.1:$registry_port"
  ca_cert: pki/ca.crt
  cert: pki/registry.crt
  key: pki/registry.key
  partners: [$(IFS=,; echo "${partners[*]}")]
registry:
  dir: registry
coordinator:
  partners:
EOF

declare -A eval_port
for p in "${partners[@]}"; do
  eval_port[$p]=$(free_port)
  local_port=$(free_port)
  echo "    - $p 127.0.0.1:${eval_port[$p]}" >> "$run/vendor.yaml"
  mkdir -p "$run/partners/$p"
  cat > "$run/partners/$p/partner.yaml" <<EOF
# Partner $p. The vendor-facing listener is PLAINTEXT here so that the demo's traffic audit can
# read every byte on the wire; production uses mutual TLS (vendor_api.tls: true, the default).
vendor:
  address: "127.0.0.1:$registry_port"
  ca_cert: ../../pki/ca.crt
  client_cert: ../../pki/partners/$p/client.crt
  client_key: ../../pki/partners/$p/client.key
  signing_key: ../../vendor_key.pub
model_cache:
  dir: models
gallery:
  dir: ../../galleries/$p
  db: gallery.db
engine:
  upsample: 1
vendor_api:
  listen: "127.0.0.1:${eval_port[$p]}"
  tls: false
  allowed_vendors: [fedface-vendor]
local_api:
  listen: "127.0.0.1:$local_port"
# The demo galleries hold 6-8 subjects, so k is 5 (the product default is 10), and epsilon is
# large: Laplace noise over 201 histogram bins swamps a few hundred comparisons at epsilon ~1.
egress:
  k_minimum: 5
  differential_privacy: true
  epsilon_per_release: 40.0
  epsilon_budget: 200.0
  contribution_bound: 5
EOF
done
cat >> "$run/vendor.yaml" <<EOF
  quorum: 2
  target_fmr: 1e-3
EOF

say "vendor: model registry on 127.0.0.1:$registry_port (mutual TLS)"
(cd "$run" && exec "$vendor_bin" serve --config vendor.yaml) > "$run/logs/vendor.log" 2>&1 &
pids+=($!)
wait_port "$registry_port"

for p in "${partners[@]}"; do
  say "partner $p: pull + verify the model, enrol the gallery"
  "$partner_bin" models pull --config "$run/partners/$p/partner.yaml"
  "$partner_bin" enroll --config "$run/partners/$p/partner.yaml"
done

say "partners: serving the vendor (evaluation) and their own apps (local match API)"
for p in "${partners[@]}"; do
  "$partner_bin" serve --config "$run/partners/$p/partner.yaml" > "$run/logs/$p.log" 2>&1 &
  pids+=($!)
done
for p in "${partners[@]}"; do wait_port "${eval_port[$p]}"; done

say "capturing every packet that leaves each partner's vendor-facing port"
tcpdump_pids=()
for p in "${partners[@]}"; do
  tcpdump -i lo -U --immediate-mode -Z root -B 32768 -w "$run/pcap/$p.pcap" \
    "tcp port ${eval_port[$p]}" > "$run/logs/tcpdump-$p.log" 2>&1 &
  tcpdump_pids+=($!)
  pids+=($!)
done
sleep 1

say "vendor: evaluation round (verification protocol, model 1.0.0)"
round_status=0
(cd "$run" && "$vendor_bin" round --config vendor.yaml --model 1.0.0 --protocol verification \
  --out report --round-id demo-round-1 --plaintext) || round_status=$?

sleep 1
for pid in "${tcpdump_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${tcpdump_pids[@]}"; do wait "$pid" 2>/dev/null || true; done

say "traffic audit: canaries, embeddings, image signatures, message types, ledger"
echo fedface.v1.EvaluationRelease > "$run/allowed_types.txt"
audit_failures=0
for p in "${partners[@]}"; do
  dir="$run/partners/$p"
  canary_args=()
  [ "$p" != bbt-studio ] && canary_args=(--canaries "$run/canaries.txt")
  if "$partner_bin" audit --pcap "$run/pcap/$p.pcap" --port "${eval_port[$p]}" \
      "${canary_args[@]}" --allow-types "$run/allowed_types.txt" --embeddings-db "$dir/gallery.db" \
      --ledger "$dir/egress_ledger.db" > "$run/logs/audit-$p.txt" 2>&1; then
    echo "$p: PASS  ($(grep -m1 'bytes that left the partner' "$run/logs/audit-$p.txt" || true))"
  else
    audit_failures=$((audit_failures + 1))
    echo "$p: FAIL — see $run/logs/audit-$p.txt"
  fi
done

say "where things are"
echo "report:        $run/report/report.html  (and report.json)"
echo "captures:      $run/pcap/*.pcap"
echo "audit reports: $run/logs/audit-*.txt"
echo "logs:          $run/logs/"
if [ "$round_status" -ne 0 ] || [ "$audit_failures" -ne 0 ]; then
  echo "demo: round exit $round_status, $audit_failures audit failure(s)" >&2
  exit 1
fi
echo "demo: round complete, every partner's audit passed"
