#!/usr/bin/env bash
# The traffic audit for a partner's security officer.
#
#   scripts/audit.sh capture IFACE PORT OUT.pcap
#       Captures the partner's vendor-facing traffic (TCP port PORT on interface IFACE, e.g. lo
#       or the partner's uplink) into OUT.pcap until Ctrl-C, with the settings the audit needs:
#       whole packets (-s 0), written at once (-U --immediate-mode), a large kernel buffer.
#       Needs root (or CAP_NET_RAW). Mutual TLS is decrypted by the audit with the partner's key
#       log (audit.tls_key_log in its configuration, then --tls-keylog FILE below).
#
#   scripts/audit.sh --pcap OUT.pcap --port PORT [--canaries FILE] [--embeddings-db GALLERY]
#                    [--ledger LEDGER] [--allow-types FILE] [--json] ...
#       Runs `partner_node audit` (all its flags: scripts/audit.sh --help). Exit 0: the capture
#       shows nothing but known, well-formed gRPC messages and no forbidden bytes; 1: violations.
#
# The partner_node binary: $FEDFACE_PARTNER_NODE, else the build tree, else PATH.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

if [ "${1:-}" = "capture" ]; then
  if [ $# -ne 4 ]; then
    echo "usage: scripts/audit.sh capture IFACE PORT OUT.pcap" >&2
    exit 2
  fi
  iface=$2 port=$3 out=$4
  if ! command -v tcpdump >/dev/null; then
    echo "audit: tcpdump is missing; run scripts/setup.sh" >&2
    exit 1
  fi
  echo "audit: capturing tcp port $port on $iface into $out; Ctrl-C to stop" >&2
  exec tcpdump -i "$iface" -s 0 -U --immediate-mode -B 32768 -Z root -w "$out" "tcp port $port"
fi

binary=${FEDFACE_PARTNER_NODE:-}
if [ -z "$binary" ]; then
  for candidate in "$root"/build/partner_node/partner_node \
                   "$root"/build-*/partner_node/partner_node; do
    if [ -x "$candidate" ]; then binary=$candidate; break; fi
  done
fi
if [ -z "$binary" ]; then binary=$(command -v partner_node || true); fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  echo "audit: partner_node is not built (cmake --build build); or set FEDFACE_PARTNER_NODE" >&2
  exit 1
fi
exec "$binary" audit "$@"
