#!/usr/bin/env bash
# The fedface demo, end to end on one machine, in the production configuration (mutual TLS on
# every link: registry, partners' vendor-facing listeners, coordinator):
#   vendor: keys, a signed model package, the PKI (scripts/make_certs.sh --dev), the model
#   registry, the coordinator;
#   partners: three galleries made from the npm sample photos (every detected face is a subject,
#   its extra captures SYNTHETIC variations), plus ../shared/datasets/faceapi-bbt (8 real
#   identities) as a fourth partner when that folder exists;
#   each partner pulls and verifies the model (captured in its own pcap of the registry port:
#   partners are set up one after another), enrols its gallery and serves the vendor;
#   one evaluation round (captured: each partner's vendor-facing port), the pooled report, then
#   each partner's traffic audit of both its captures, decrypted with its own TLS key log.
# Differs from production only in k and epsilon (tiny galleries) and in running on loopback
# instead of separate hosts (a partner's capture is port filters, not its own interface).
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
# Partner $p: the production configuration (mutual TLS both ways), on loopback.
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
  tls: true
  ca_cert: ../../pki/ca.crt
  cert: ../../pki/partners/$p/server.crt
  key: ../../pki/partners/$p/server.key
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
# AUDIT ONLY: TLS session secrets of the vendor listener and the registry channel, so that the
# partner's audit can decrypt its captures. A secret: delete it after the audit window.
audit:
  tls_key_log: tls-keys.log
EOF
done
cat >> "$run/vendor.yaml" <<EOF
  client_cert: pki/coordinator.crt
  client_key: pki/coordinator.key
  quorum: 2
  target_fmr: 1e-3
EOF

say "vendor: model registry on 127.0.0.1:$registry_port (mutual TLS)"
(cd "$run" && exec "$vendor_bin" serve --config vendor.yaml) > "$run/logs/vendor.log" 2>&1 &
pids+=($!)
wait_port "$registry_port"

# Starts tcpdump on loopback writing $1 with filter $2 (large buffer: decrypting needs every
# record), waits until it captures; its pid is added to capture_pids.
capture_pids=()
start_capture() {
  local log="$run/logs/tcpdump-$(basename "$1" .pcap).log"
  tcpdump -i lo -U --immediate-mode -Z root -B 32768 -w "$1" "$2" > "$log" 2>&1 &
  capture_pids+=($!)
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: tcpdump did not start (see $log)" >&2
  return 1
}
# Stops the running captures once their last packets are written.
stop_captures() {
  sleep 0.5
  for pid in "${capture_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${capture_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  capture_pids=()
}

echo "note: partners/NAME/tls-keys.log (TLS session secrets) exist for the audit only and are secrets"
for p in "${partners[@]}"; do
  say "partner $p: pull + verify the model (captured), enrol the gallery"
  start_capture "$run/pcap/$p-pull.pcap" "tcp port $registry_port"
  pull_status=0
  "$partner_bin" models pull --config "$run/partners/$p/partner.yaml" || pull_status=$?
  stop_captures
  [ "$pull_status" -eq 0 ] || exit "$pull_status"
  "$partner_bin" enroll --config "$run/partners/$p/partner.yaml"
done

say "partners: serving the vendor (evaluation) and their own apps (local match API)"
for p in "${partners[@]}"; do
  "$partner_bin" serve --config "$run/partners/$p/partner.yaml" > "$run/logs/$p.log" 2>&1 &
  pids+=($!)
done
for p in "${partners[@]}"; do wait_port "${eval_port[$p]}"; done

say "capturing every packet on each partner's vendor-facing port"
for p in "${partners[@]}"; do
  start_capture "$run/pcap/$p-round.pcap" "tcp port ${eval_port[$p]}"
done

say "vendor: evaluation round (verification protocol, model 1.0.0)"
round_status=0
(cd "$run" && "$vendor_bin" round --config vendor.yaml --model 1.0.0 --protocol verification \
  --out report --round-id demo-round-1) || round_status=$?
stop_captures

say "traffic audit of each partner's pull + round captures, TLS decrypted with its key log"
# One line from an audit's JSON report: the gRPC messages that left the partner in its pull and
# round captures, and every TCP payload byte it sent (TLS records included).
left_partner() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def part(kind):
    sent = [m for m in r["sent_messages"] if m["pcap"].endswith(f"-{kind}.pcap")]
    n = len(sent)
    return f"{kind} {n} message{'s' * (n != 1)} {sum(m['size'] for m in sent)} B"
conns = r["connections"]
decrypted = sum(1 for c in conns if c["tls"] and c["tls"]["decrypted"])
print(f"left it: {part('pull')}, {part('round')}; on the wire {r['bytes_left_partner']} B in "
      f"{len(conns)} connections, {decrypted} TLS decrypted")
PY
}
# What may leave a partner: its requests to the registry (model pulls) and its releases.
printf '%s\n' fedface.v1.ListModelsRequest fedface.v1.GetManifestRequest \
  fedface.v1.DownloadWeightsRequest fedface.v1.EvaluationRelease > "$run/allowed_types.txt"
audit_failures=0
for p in "${partners[@]}"; do
  dir="$run/partners/$p"
  canary_args=()
  [ "$p" != bbt-studio ] && canary_args=(--canaries "$run/canaries.txt")
  if "$partner_bin" audit --pcap "$run/pcap/$p-pull.pcap" --pcap "$run/pcap/$p-round.pcap" \
      --port "${eval_port[$p]}" --registry-port "$registry_port" --tls-keylog "$dir/tls-keys.log" \
      "${canary_args[@]}" --allow-types "$run/allowed_types.txt" --embeddings-db "$dir/gallery.db" \
      --ledger "$dir/egress_ledger.db" --json-out "$run/logs/audit-$p.json" \
      > "$run/logs/audit-$p.txt" 2>&1; then
    printf '%-13s PASS  %s\n' "$p" "$(left_partner "$run/logs/audit-$p.json")"
  else
    audit_failures=$((audit_failures + 1))
    echo "$p: FAIL — see $run/logs/audit-$p.txt"
  fi
done

say "where things are"
echo "report:        $run/report/report.html  (and report.json)"
echo "captures:      $run/pcap/NAME-{pull,round}.pcap  (TLS: partners/NAME/tls-keys.log decrypts them)"
echo "audit reports: $run/logs/audit-*.txt"
echo "logs:          $run/logs/"
if [ "$round_status" -ne 0 ] || [ "$audit_failures" -ne 0 ]; then
  echo "demo: round exit $round_status, $audit_failures audit failure(s)" >&2
  exit 1
fi
echo "demo: round complete, every partner's audit passed"
