#!/usr/bin/env bash
# The fedface demo, end to end on one machine, in the production configuration (mutual TLS on
# every link: registry, partners' vendor-facing listeners, coordinator):
#   vendor: keys, a signed model package, the PKI (scripts/make_certs.sh --dev), the model
#   registry, the coordinator;
#   partners: three galleries made from the npm sample photos (every detected face is a subject,
#   its extra captures SYNTHETIC variations), plus ../shared/datasets/faceapi-bbt (8 real
#   identities) as a fourth partner when that folder exists;
#   each partner pulls and verifies the model, enrols its gallery and serves the vendor;
#   one evaluation round, the pooled report, then each partner's traffic audit of its capture,
#   decrypted with its own TLS key log, with its own configuration as the peer allowlist.
# As root with a working `ip netns`, each partner runs in its own network namespace
# (fedface-demo-pN, veth 10.232.N.2/30) and the vendor (registry + coordinator) in another
# (fedface-demo-vendor, 10.232.N.1 facing partner N): a partner's capture is its whole interface,
# no filter, from before its model pull to after the round, so every byte that left the partner
# (pull, round, ARP, DNS, any other connection) is audited (--capture-mode namespace). Otherwise
# (or FEDFACE_DEMO_NO_NETNS=1) everything runs on loopback and each partner's capture is port
# filters (--capture-mode loopback, printed in every verdict line).
# Differs from production only in k, epsilon and c_i (tiny galleries) and in running on one machine.
# `scripts/demo.sh --postgres`: the same demo with bank-east's gallery in PostgreSQL (a throw-away
# cluster under /tmp: unix socket only, no TCP port; stopped and removed on exit), enrolled by two
# `partner_node enroll` hosts at once (both in its namespace) sharing the work through the store;
# its server and its audit read that store. The default stays on the embedded SQLite store.
# Sets up what is missing first. Everything lives in ./demo-run (recreated on every run); Ctrl-C
# stops every process it started and deletes the namespaces. The terminal gets the demo's own
# figures (under 150 lines); what setup, the build, each pull and enrolment and each server print
# goes to demo-run/logs/, and a step that fails prints the tail of its log.
set -euo pipefail
postgres=false
case "${1:-}" in
  "") ;;
  --postgres) postgres=true ;;
  *) echo "usage: scripts/demo.sh [--postgres]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

build=${FEDFACE_BUILD_DIR:-$root/build}
vendor_bin="$build/model_vendor/model_vendor"
partner_bin="$build/partner_node/partner_node"
run="$root/demo-run"
logs="$run/logs"

pids=()
cleanup() {
  local code=$?
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  delete_namespaces
  stop_postgres
  exit "$code"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, stopping everything"; exit 130' INT TERM

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Prints why the demo stops and the last lines of log $1, then exits with $2 (default 1).
fail_log() {
  echo "demo: FAILED (exit ${2:-1}); the last 40 lines of $1:" >&2
  tail -n 40 "$1" >&2
  exit "${2:-1}"
}
# Runs "$2..." with its output in log $1; on failure shows the log's tail and stops.
logged() {
  local log=$1 code=0
  shift
  "$@" > "$log" 2>&1 || code=$?
  [ "$code" -eq 0 ] || fail_log "$log" "$code"
}

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The demo's namespaces (never the tests' fedface-audit-*): deleted on exit and before a re-run.
# Deleting a namespace deletes its veth ends and their peers.
ns_prefix=fedface-demo
netns=false
delete_namespaces() {
  $netns || [ "${1:-}" = stale ] || return 0
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$ns_prefix-" || true); do
    ip netns del "$ns" 2>/dev/null || true
  done
}
# Runs "$@" in the vendor's namespace (exec: the caller's pid becomes the command's).
vendor_exec() { if $netns; then exec ip netns exec "$ns_prefix-vendor" "$@"; else exec "$@"; fi; }
# Runs "$2..." in partner number $1's namespace.
partner_exec() {
  local n=$1; shift
  if $netns; then exec ip netns exec "$ns_prefix-p$n" "$@"; else exec "$@"; fi
}

# --postgres: the throw-away PostgreSQL cluster of the shared gallery (run as `postgres` when
# root: the server refuses root). pg_dir is its folder, data and unix socket.
pg_dir=""
pg_user() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
start_postgres() {
  local bin
  bin=$(pg_bin)
  [ -x "$bin/initdb" ] || { echo "demo: --postgres needs postgresql-15 (scripts/setup.sh)" >&2; exit 1; }
  pg_dir=$(mktemp -d /tmp/fedface-demo-pg.XXXXXX)
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$pg_dir"
  pg_user "$bin/initdb" -D "$pg_dir/data" -U fedface --auth=trust --encoding=UTF8 --locale=C \
    > "$logs/postgres.log" 2>&1 || fail_log "$logs/postgres.log"
  printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$pg_dir" \
    | pg_user tee -a "$pg_dir/data/postgresql.conf" > /dev/null
  pg_user "$bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w start >> "$logs/postgres.log" 2>&1 \
    || fail_log "$logs/postgres.log"
  "$bin/createdb" -h "$pg_dir" -U fedface fedface >> "$logs/postgres.log" 2>&1 || fail_log "$logs/postgres.log"
}
stop_postgres() {
  [ -n "$pg_dir" ] || return 0
  pg_user "$(pg_bin)/pg_ctl" -D "$pg_dir/data" -m fast -w stop > /dev/null 2>&1 || true
  rm -rf "$pg_dir"
}

# Waits until something listens on TCP port $2, looking from where `$1 ss` runs (vendor_exec,
# partner_exec N); a listening-socket check, not a connection, so no probe is in a capture.
wait_port() {
  local port=${*: -1}
  for _ in $(seq 1 600); do
    if ( "${@:1:$#-1}" ss -Hltn "sport = :$port" ) 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.1
  done
  echo "demo: nothing listens on port $port" >&2
  return 1
}

rm -rf "$run"
mkdir -p "$run"/{registry,logs,pcap,report}
echo "demo: logs of setup, build, pulls, enrolments and servers go to $logs/"
echo "setup + build (the first run installs packages and compiles for 10-20 min; log: logs/build.log)"
logged "$logs/build.log" bash scripts/build.sh
tail -n 1 "$logs/build.log"
faceapi=$(bash scripts/fetch_model.sh 2> "$logs/fetch_model.log") || fail_log "$logs/fetch_model.log"

partners=(clinic-north bank-east photos-west)
with_bbt=false
if [ -d ../shared/datasets/faceapi-bbt/gallery ]; then
  partners+=(bbt-studio)
  with_bbt=true
fi

# Namespaces when root and `ip netns` works: vendor namespace + one per partner, partner N on veth
# fdpN (10.232.N.2/30) facing the vendor's fdvN (10.232.N.1). No IPv6 (router solicitations,
# MLD): all a partner sends is on the audited IPv4 link. The vendor is in its own namespace, not
# the root one, so that its listeners (0.0.0.0) are not on the host's real network.
if [ -z "${FEDFACE_DEMO_NO_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v ip > /dev/null; then
  delete_namespaces stale
  if ip netns add "$ns_prefix-vendor" 2>/dev/null; then netns=true; fi
fi
no_ipv6() {
  ip netns exec "$1" sh -c "for f in all default $2; do p=/proc/sys/net/ipv6/conf/\$f/disable_ipv6; \
    [ -w \$p ] && echo 1 > \$p; done; true"
}
declare -A partner_ip vendor_ip iface
n=0
for p in "${partners[@]}"; do
  n=$((n + 1))
  if $netns; then
    partner_ip[$p]=10.232.$n.2 vendor_ip[$p]=10.232.$n.1 iface[$p]=fdp$n
  else
    partner_ip[$p]=127.0.0.1 vendor_ip[$p]=127.0.0.1 iface[$p]=lo
  fi
done
if $netns; then
  no_ipv6 "$ns_prefix-vendor" lo
  ip -n "$ns_prefix-vendor" link set lo up
  n=0
  for p in "${partners[@]}"; do
    n=$((n + 1))
    ns=$ns_prefix-p$n
    ip netns add "$ns"
    no_ipv6 "$ns" lo
    ip -n "$ns" link set lo up
    ip link add "fdv$n" netns "$ns_prefix-vendor" type veth peer name "fdp$n" netns "$ns"
    no_ipv6 "$ns_prefix-vendor" "fdv$n"
    no_ipv6 "$ns" "fdp$n"
    ip -n "$ns_prefix-vendor" addr add "${vendor_ip[$p]}/30" dev "fdv$n"
    ip -n "$ns" addr add "${partner_ip[$p]}/30" dev "fdp$n"
    ip -n "$ns_prefix-vendor" link set "fdv$n" up
    ip -n "$ns" link set "fdp$n" up
  done
  capture_mode=namespace
  echo "network: partners in their own namespaces ($ns_prefix-pN, veth 10.232.N.2/30), vendor in" \
    "$ns_prefix-vendor; each partner's capture is its whole interface"
else
  capture_mode=loopback
  echo "network: LOOPBACK (not root, no ip netns, or FEDFACE_DEMO_NO_NETNS): partners' captures" \
    "are port filters on lo, not their whole interface"
fi

say "vendor: key pair, signed model package, certificates"
logged "$logs/vendor-keygen.log" "$vendor_bin" keygen --out "$run/vendor_key"
grep '^key id' "$logs/vendor-keygen.log"
logged "$logs/vendor-package.log" "$vendor_bin" package --faceapi "$faceapi" --version 1.0.0 \
  --key "$run/vendor_key" --out "$run/registry/1.0.0"
tail -n 1 "$logs/vendor-package.log"
if $netns; then
  # Server certificates name the addresses that are dialled: the registry's on each partner's link,
  # each partner's veth address (the coordinator dials it).
  cert_args=()
  for p in "${partners[@]}"; do
    cert_args+=(--server-name "${vendor_ip[$p]}" --partner-address "$p=${partner_ip[$p]}")
  done
  bash scripts/make_certs.sh "$run/pki" "${cert_args[@]}" "${partners[@]}" >/dev/null
else
  # A development set: everything on loopback (loopback names in the server certificates).
  bash scripts/make_certs.sh "$run/pki" --dev "${partners[@]}" >/dev/null
fi

say "partners: galleries (capture0 = real face crop; capture1.. = SYNTHETIC variations)"
"$build/tests/tools/make_demo_galleries" --out "$run/galleries" \
  --partners clinic-north,bank-east,photos-west --captures 5 \
  --canaries "$run/canaries.txt" "$faceapi"/demo/sample*.jpg
if $with_bbt; then
  cp -r ../shared/datasets/faceapi-bbt/gallery "$run/galleries/bbt-studio"
  echo "bbt-studio: 8 real identities, 40 images from ../shared/datasets/faceapi-bbt"
fi

# Namespaces: fixed ports (nothing else is there) and the registry on every vendor-side address.
if $netns; then registry_port=8443 registry_host=0.0.0.0; else registry_port=$(free_port) registry_host=127.0.0.1; fi
cat > "$run/vendor.yaml" <<EOF
server:
  listen: "$registry_host:$registry_port"
  ca_cert: pki/ca.crt
  cert: pki/registry.crt
  key: pki/registry.key
  partners: [$(IFS=,; echo "${partners[*]}")]
registry:
  dir: registry
coordinator:
  partners:
EOF

# --postgres: bank-east's gallery lives in PostgreSQL (the other lines of its gallery section).
pg_partner=bank-east
if $postgres; then
  say "bank-east's gallery: PostgreSQL (a throw-away cluster, unix socket only; logs/postgres.log)"
  start_postgres
  echo "PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}') at $pg_dir, database fedface"
fi
gallery_store() {
  $postgres && [ "$1" = "$pg_partner" ] || return 0
  printf '  store: postgresql\n  postgresql:\n    conninfo: "host=%s dbname=fedface user=fedface"\n' "$pg_dir"
}

# The demo's privacy settings (tiny galleries; see the partner file's comment).
k_minimum=5 epsilon_per_release=80 epsilon_budget=200 contribution_bound=5
genuine_bound=10 impostor_bound=6
declare -A eval_port
for p in "${partners[@]}"; do
  if $netns; then eval_port[$p]=9443 local_port=9444; else eval_port[$p]=$(free_port) local_port=$(free_port); fi
  echo "    - $p ${partner_ip[$p]}:${eval_port[$p]}" >> "$run/vendor.yaml"
  mkdir -p "$run/partners/$p"
  cat > "$run/partners/$p/partner.yaml" <<EOF
# Partner $p: the production configuration (mutual TLS both ways); network: $capture_mode.
vendor:
  address: "${vendor_ip[$p]}:$registry_port"
  ca_cert: ../../pki/ca.crt
  client_cert: ../../pki/partners/$p/client.crt
  client_key: ../../pki/partners/$p/client.key
  signing_key: ../../vendor_key.pub
model_cache:
  dir: models
gallery:
  dir: ../../galleries/$p
  db: gallery.db
$(gallery_store "$p")
engine:
  upsample: 1
vendor_api:
  listen: "${partner_ip[$p]}:${eval_port[$p]}"
  tls: true
  ca_cert: ../../pki/ca.crt
  cert: ../../pki/partners/$p/server.crt
  key: ../../pki/partners/$p/server.key
  allowed_vendors: [fedface-vendor]
local_api:
  listen: "127.0.0.1:$local_port"
# The demo galleries hold 6-8 subjects, so k is 5 (the product default is 10), epsilon is large
# (a ring of 7 subjects has 21 impostor pairs: at epsilon ~1 noise would swamp them), and
# c_i is 6 (the product default 64 adds noise, not comparisons, below 65 subjects).
egress:
  k_minimum: $k_minimum
  differential_privacy: true
  epsilon_per_release: $epsilon_per_release
  epsilon_budget: $epsilon_budget
  contribution_bound: $contribution_bound
  genuine_contribution_bound: $genuine_bound
  impostor_contribution_bound: $impostor_bound
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

say "vendor: model registry on $registry_host:$registry_port (mutual TLS)"
(cd "$run" && vendor_exec "$vendor_bin" serve --config vendor.yaml) > "$run/logs/vendor.log" 2>&1 &
pids+=($!)
wait_port vendor_exec "$registry_port" || fail_log "$run/logs/vendor.log"

# Starts tcpdump in partner number $3's namespace (loopback: here) on interface $4 writing $1,
# filter $2 (none: every packet; large buffer: decrypting needs every record), waits until it
# captures; its pid is added to capture_pids.
capture_pids=()
start_capture() {
  local log="$run/logs/tcpdump-$(basename "$1" .pcap).log"
  local filter=()
  [ -n "$2" ] && filter=("$2")
  (partner_exec "$3" tcpdump -i "$4" -U --immediate-mode -Z root -B 32768 -w "$1" "${filter[@]}") \
    > "$log" 2>&1 &
  capture_pids+=($!)
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q 'listening on' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: tcpdump did not start" >&2
  fail_log "$log"
}
# Stops the running captures once their last packets are written.
stop_captures() {
  sleep 0.5
  for pid in "${capture_pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${capture_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  capture_pids=()
}

echo "note: partners/NAME/tls-keys.log (TLS session secrets) exist for the audit only and are secrets"
declare -A num
n=0
for p in "${partners[@]}"; do n=$((n + 1)); num[$p]=$n; done
if $netns; then
  say "capturing every packet on each partner's own interface (no filter), pull to round"
  for p in "${partners[@]}"; do start_capture "$run/pcap/$p.pcap" "" "${num[$p]}" "${iface[$p]}"; done
fi
# Runs "$2..." in partner number $1's namespace, in a subshell (partner_exec execs).
in_partner() { (partner_exec "$@"); }
say "partners: pull + verify the model (captured), enrol the gallery (logs/NAME-{pull,enroll}.log)"
for p in "${partners[@]}"; do
  $netns || start_capture "$run/pcap/$p-pull.pcap" "tcp port $registry_port" "${num[$p]}" lo
  pull_status=0
  in_partner "${num[$p]}" "$partner_bin" models pull --config "$run/partners/$p/partner.yaml" \
    > "$logs/$p-pull.log" 2>&1 || pull_status=$?
  $netns || stop_captures
  [ "$pull_status" -eq 0 ] || fail_log "$logs/$p-pull.log" "$pull_status"
  printf '%-13s %s\n' "$p" "$(grep '^active:' "$logs/$p-pull.log")"
  if $postgres && [ "$p" = "$pg_partner" ]; then
    # Two enrolment hosts at once on the one PostgreSQL gallery: they share the files.
    in_partner "${num[$p]}" "$partner_bin" enroll --config "$run/partners/$p/partner.yaml" \
      > "$logs/$p-enroll-host2.log" 2>&1 &
    host2=$!
    logged "$logs/$p-enroll.log" in_partner "${num[$p]}" "$partner_bin" enroll \
      --config "$run/partners/$p/partner.yaml"
    wait "$host2" || fail_log "$logs/$p-enroll-host2.log"
    printf '%-13s host 1: %s\n' "" "$(tail -n 1 "$logs/$p-enroll.log")"
    printf '%-13s host 2: %s\n' "" "$(tail -n 1 "$logs/$p-enroll-host2.log")"
    "$partner_bin" enroll --config "$run/partners/$p/partner.yaml" --status \
      > "$logs/$p-enroll-status.log" 2>&1 || fail_log "$logs/$p-enroll-status.log"
    grep -E '^(pool:|host )' "$logs/$p-enroll-status.log" | sed 's/^/              /'
    continue
  fi
  logged "$logs/$p-enroll.log" in_partner "${num[$p]}" "$partner_bin" enroll \
    --config "$run/partners/$p/partner.yaml"
  printf '%-13s %s\n' "" "$(tail -n 1 "$logs/$p-enroll.log")"
done

say "partners: serving the vendor (evaluation) and their own apps (local match API)"
for p in "${partners[@]}"; do
  (partner_exec "${num[$p]}" "$partner_bin" serve --config "$run/partners/$p/partner.yaml") \
    > "$run/logs/$p.log" 2>&1 &
  pids+=($!)
done
for p in "${partners[@]}"; do
  wait_port partner_exec "${num[$p]}" "${eval_port[$p]}" || fail_log "$logs/$p.log"
done

if ! $netns; then
  say "capturing every packet on each partner's vendor-facing port"
  for p in "${partners[@]}"; do
    start_capture "$run/pcap/$p-round.pcap" "tcp port ${eval_port[$p]}" "${num[$p]}" lo
  done
fi

say "vendor: evaluation round (verification protocol, model 1.0.0)"
echo "privacy (every partner): k-minimum $k_minimum subjects (product default 10), differential" \
  "privacy epsilon $epsilon_per_release per release of a $epsilon_budget budget, release layout 2" \
  "with contribution bounds c_g = $genuine_bound mated and c_i = $impostor_bound impostor" \
  "comparisons per subject; each figure's 95 % interval comes from these public values, and" \
  "a figure whose interval is wider than 0.10 is shown as \"too noisy\""
round_status=0
(cd "$run" && vendor_exec "$vendor_bin" round --config vendor.yaml --model 1.0.0 --protocol verification \
  --out report --round-id demo-round-1) || round_status=$?
stop_captures

say "traffic audit of each partner's capture ($capture_mode), TLS decrypted with its key log"
# One line from an audit's JSON report: the gRPC messages that left the partner in its pull and
# round captures, and every TCP payload byte it sent (TLS records included).
left_partner() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
PULL = {"fedface.v1.ListModelsRequest", "fedface.v1.GetManifestRequest",
        "fedface.v1.DownloadWeightsRequest"}
def part(kind):
    sent = [m for m in r["sent_messages"] if (m["type"] in PULL) == (kind == "pull")]
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
  # Peers from its own configuration (registry out, vendor-facing listener in).
  if $netns; then
    who=(--pcap "$run/pcap/$p.pcap" --partner-ip "${partner_ip[$p]}")
  else
    who=(--pcap "$run/pcap/$p-pull.pcap" --pcap "$run/pcap/$p-round.pcap"
      --registry-port "$registry_port")
  fi
  # The stored embeddings and digests to look for: from the store its configuration names.
  store_args=(--embeddings-db "$dir/gallery.db")
  $postgres && [ "$p" = "$pg_partner" ] && store_args=(--config-gallery)
  if "$partner_bin" audit "${who[@]}" --port "${eval_port[$p]}" --config "$dir/partner.yaml" \
      --capture-mode "$capture_mode" --tls-keylog "$dir/tls-keys.log" \
      "${canary_args[@]}" --allow-types "$run/allowed_types.txt" "${store_args[@]}" \
      --ledger "$dir/egress_ledger.db" --json-out "$run/logs/audit-$p.json" \
      > "$run/logs/audit-$p.txt" 2>&1; then
    printf '%-13s PASS  %s\n' "$p" "$(left_partner "$run/logs/audit-$p.json")"
  else
    audit_failures=$((audit_failures + 1))
    echo "$p: FAIL — the last 20 lines of $run/logs/audit-$p.txt:"
    tail -n 20 "$run/logs/audit-$p.txt"
  fi
done

say "where things are"
echo "report:        $run/report/report.html  (and report.json)"
if $netns; then
  echo "captures:      $run/pcap/NAME.pcap  (whole interface; TLS: partners/NAME/tls-keys.log decrypts them)"
else
  echo "captures:      $run/pcap/NAME-{pull,round}.pcap  (loopback port filters; TLS: partners/NAME/tls-keys.log)"
fi
echo "audit reports: $run/logs/audit-*.txt"
echo "logs:          $run/logs/  (build, NAME-pull/-enroll, NAME = its server, vendor = registry)"
if [ "$round_status" -ne 0 ] || [ "$audit_failures" -ne 0 ]; then
  echo "demo: round exit $round_status, $audit_failures audit failure(s)" \
    "(servers' logs: $logs/NAME.log, $logs/vendor.log)" >&2
  exit 1
fi
echo "demo: round complete, every partner's audit passed"
