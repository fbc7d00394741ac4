#!/usr/bin/env bash
# The vendor's small PKI for the mutual-TLS links (OpenSSL, ECDSA P-256 keys). One certificate
# per role, each with ONE extended key usage, so that no key can play a role it was not issued
# for (a client certificate cannot serve, a server certificate cannot call):
#   OUT/ca.key, OUT/ca.crt                  the CA every side trusts (keep ca.key offline)
#   OUT/registry.key, registry.crt          the registry's server certificate (`model_vendor
#                                           serve`: server.cert/key); serverAuth only,
#                                           CN=fedface-registry, names = every --server-name
#   OUT/coordinator.key, coordinator.crt    the coordinator's client certificate towards partners
#                                           (coordinator.client_cert/key); clientAuth only,
#                                           CN=--vendor-name (default fedface-vendor): the name
#                                           partners list in vendor_api.allowed_vendors
#   OUT/partners/NAME/client.{key,crt}      partner NAME's client certificate towards the registry
#                                           (vendor.client_cert/key); clientAuth only, CN=NAME:
#                                           the name the registry's server.partners allowlist names
#   OUT/partners/NAME/server.{key,crt}      partner NAME's server certificate for its vendor-facing
#                                           listener (vendor_api.cert/key); serverAuth only,
#                                           CN=NAME (the coordinator checks it against the name in
#                                           coordinator.partners), names = every
#                                           --partner-address NAME=HOST. Made only when the
#                                           partner has an address or the set is --dev.
# No certificate carries localhost, 127.0.0.1 or ::1 unless --dev asks for a development set
# (then every server certificate carries them, for one-machine demos and tests).
# Re-running adds what is missing and keeps what exists (the CA, the registry's and the
# coordinator's certificates, earlier partners), so partners can be added later; delete a file
# to reissue it. Private keys are written with mode 0600.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/make_certs.sh OUT_DIR [--dev] [--server-name HOST]... [--vendor-name NAME]
                             [--partner-address PARTNER=HOST]... [--days N] [PARTNER...]

  OUT_DIR             folder for the CA, the vendor's certificates and partners/ (created)
  --dev               development set: every server certificate also carries localhost,
                      127.0.0.1 and ::1
  --server-name HOST  a DNS name or IP address of the registry (repeatable; the registry's
                      certificate needs one unless --dev)
  --vendor-name NAME  CN of the coordinator's client certificate (default fedface-vendor)
  --partner-address PARTNER=HOST
                      a DNS name or IP address partners' vendor-facing listener is reached at
                      (repeatable); PARTNER must be listed
  --days N            validity of new certificates in days (default 825)
  PARTNER             a partner name ([A-Za-z0-9._-], 1..64 chars): partners/PARTNER/
USAGE
}

if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  usage
  [ $# -ge 1 ] && exit 0 || exit 2
fi
out=$1
shift
days=825
dev=0
vendor_name=fedface-vendor
server_names=()
partners=()
declare -A partner_hosts=()
needs_value() {
  [ "$2" -ge 2 ] || { echo "make_certs: $1 needs a value" >&2; exit 2; }
}
valid_name() {
  [[ "$1" =~ ^[A-Za-z0-9._-]{1,64}$ ]] && [ "$1" != "." ] && [ "$1" != ".." ]
}
valid_host() {
  [[ "$1" =~ ^[A-Za-z0-9.:-]{1,253}$ ]]
}
while [ $# -gt 0 ]; do
  case "$1" in
    --dev) dev=1; shift ;;
    --server-name) needs_value "$1" $#
                   valid_host "$2" || { echo "make_certs: '$2' is not a host name or IP address" >&2; exit 2; }
                   server_names+=("$2"); shift 2 ;;
    --vendor-name) needs_value "$1" $#; vendor_name=$2; shift 2 ;;
    --partner-address)
      needs_value "$1" $#
      if ! [[ "$2" == *=* ]] || ! valid_host "${2#*=}"; then
        echo "make_certs: --partner-address wants PARTNER=HOST, got '$2'" >&2; exit 2
      fi
      partner_hosts[${2%%=*}]+=" ${2#*=}"; shift 2 ;;
    --days) needs_value "$1" $#; days=$2; shift 2 ;;
    --help|-h) usage; exit 0 ;;
    --*) echo "make_certs: unknown flag $1" >&2; usage >&2; exit 2 ;;
    *) partners+=("$1"); shift ;;
  esac
done
if ! [[ "$days" =~ ^[0-9]+$ ]] || [ "$days" -lt 1 ]; then
  echo "make_certs: --days must be a positive integer, got '$days'" >&2; exit 2
fi
if ! valid_name "$vendor_name"; then
  echo "make_certs: '$vendor_name' is not a valid vendor name ([A-Za-z0-9._-], 1..64 chars)" >&2
  exit 2
fi
for p in ${partners[@]+"${partners[@]}"}; do
  if ! valid_name "$p"; then
    echo "make_certs: '$p' is not a valid partner name ([A-Za-z0-9._-], 1..64 chars)" >&2; exit 2
  fi
  if [ "$p" = "$vendor_name" ] || [ "$p" = fedface-registry ]; then
    # One name, one identity: a partner named like the vendor would be allowed as the vendor.
    echo "make_certs: partner name '$p' is the vendor's own name" >&2; exit 2
  fi
done
for p in "${!partner_hosts[@]}"; do
  if ! [[ " ${partners[*]+"${partners[*]}"} " == *" $p "* ]]; then
    echo "make_certs: --partner-address names '$p', which is not among the partners listed" >&2
    exit 2
  fi
done

# subjectAltName value for HOSTs (plus the loopback names for --dev); "" when there is none.
alt_names() {
  local san="" n
  local names=("$@")
  [ "$dev" = 1 ] && names+=(localhost 127.0.0.1 ::1)
  for n in ${names[@]+"${names[@]}"}; do
    if [[ "$n" =~ ^[0-9.]+$ ]] || [[ "$n" == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
  done
  echo "${san#,}"
}

registry_san=$(alt_names ${server_names[@]+"${server_names[@]}"})
if [ -z "$registry_san" ] && ! [ -f "$out/registry.crt" ]; then
  echo "make_certs: the registry's certificate needs a name: give --server-name HOST" \
       "(or --dev for a loopback development set)" >&2
  exit 2
fi
mkdir -p "$out/partners"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Issues DIR/BASE.{key,crt} unless both exist: subject $3, extended key usage $4 (serverAuth or
# clientAuth), subjectAltName $5 (may be empty).
issue() {
  local dir=$1 base=$2 subject=$3 usage=$4 san=$5
  if [ -f "$dir/$base.crt" ] && [ -f "$dir/$base.key" ]; then
    echo "make_certs: $dir/$base.crt exists, kept"
    return
  fi
  local key_usage=digitalSignature
  [ "$usage" = serverAuth ] && key_usage=digitalSignature,keyEncipherment
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$base.key" 2>/dev/null
  openssl req -new -key "$tmp/$base.key" -subj "$subject" -out "$tmp/$base.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,$key_usage"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$tmp/$base.ext"
  openssl x509 -req -in "$tmp/$base.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -CAserial "$out/ca.srl" -days "$days" -sha256 -extfile "$tmp/$base.ext" \
    -out "$tmp/$base.crt" 2>/dev/null
  chmod 600 "$tmp/$base.key"
  chmod 644 "$tmp/$base.crt"
  mkdir -p "$dir"
  mv "$tmp/$base.key" "$dir/$base.key"
  mv "$tmp/$base.crt" "$dir/$base.crt"
  echo "make_certs: new $usage certificate $dir/$base.crt (${subject##*/}${san:+; $san})"
}

if [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days "$((days * 2))" \
    -subj "/O=fedface vendor/CN=fedface vendor CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.crt" 2>/dev/null
  chmod 600 "$tmp/ca.key"
  chmod 644 "$tmp/ca.crt"
  mv "$tmp/ca.key" "$out/ca.key"
  mv "$tmp/ca.crt" "$out/ca.crt"
  echo "make_certs: new CA $out/ca.crt"
fi

issue "$out" registry "/O=fedface vendor/CN=fedface-registry" serverAuth "$registry_san"
issue "$out" coordinator "/O=fedface vendor/CN=$vendor_name" clientAuth ""

for p in ${partners[@]+"${partners[@]}"}; do
  issue "$out/partners/$p" client "/O=fedface partner/CN=$p" clientAuth ""
  # shellcheck disable=SC2086  # the hosts are a space-separated list
  san=$(alt_names ${partner_hosts[$p]:-})
  if [ -n "$san" ]; then
    issue "$out/partners/$p" server "/O=fedface partner/CN=$p" serverAuth "$san"
  elif ! [ -f "$out/partners/$p/server.crt" ]; then
    echo "make_certs: no server certificate for $p (give --partner-address $p=HOST for its" \
         "vendor-facing listener)"
  fi
done
