#!/usr/bin/env bash
# The vendor's small PKI for the mutual-TLS link (OpenSSL, ECDSA P-256 keys):
#   OUT/ca.key, OUT/ca.crt                  the CA both sides trust (keep ca.key offline)
#   OUT/vendor.key, OUT/vendor.crt          the vendor server's certificate; its names are
#                                           localhost, 127.0.0.1, ::1 and every --server-name
#   OUT/partners/NAME.key, NAME.crt         one certificate per partner, CN=NAME; NAME is
#                                           what the vendor's server.partners allowlist names. It
#                                           is the partner's client certificate towards the
#                                           registry and may also serve its vendor-facing listener
#                                           (names NAME, localhost, 127.0.0.1, ::1).
#   For the coordinator's calls to partners, run it with the partner name `fedface-vendor`:
#   partners/fedface-vendor.crt is then the vendor's client certificate (coordinator.client_cert)
#   and `fedface-vendor` the name partners list in vendor_api.allowed_vendors.
# Re-running adds what is missing and keeps what exists (the CA, the server certificate, earlier
# partners), so partners can be added later. Private keys are written with mode 0600.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/make_certs.sh OUT_DIR [--server-name NAME]... [--days N] [PARTNER...]

  OUT_DIR             folder for the CA, the server certificate and partners/ (created)
  --server-name NAME  another DNS name or IP address for the vendor's certificate (repeatable)
  --days N            validity of new certificates in days (default 825)
  PARTNER             a partner name ([A-Za-z0-9._-], 1..64 chars): partners/PARTNER.{key,crt}
USAGE
}

if [ $# -lt 1 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  usage
  [ $# -ge 1 ] && exit 0 || exit 2
fi
out=$1
shift
days=825
server_names=()
partners=()
while [ $# -gt 0 ]; do
  case "$1" in
    --server-name) [ $# -ge 2 ] || { echo "make_certs: --server-name needs a value" >&2; exit 2; }
                   server_names+=("$2"); shift 2 ;;
    --days) [ $# -ge 2 ] || { echo "make_certs: --days needs a value" >&2; exit 2; }
            days=$2; shift 2 ;;
    --help|-h) usage; exit 0 ;;
    --*) echo "make_certs: unknown flag $1" >&2; usage >&2; exit 2 ;;
    *) partners+=("$1"); shift ;;
  esac
done
if ! [[ "$days" =~ ^[0-9]+$ ]] || [ "$days" -lt 1 ]; then
  echo "make_certs: --days must be a positive integer, got '$days'" >&2; exit 2
fi
for p in ${partners[@]+"${partners[@]}"}; do
  if ! [[ "$p" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || [ "$p" = "." ] || [ "$p" = ".." ]; then
    echo "make_certs: '$p' is not a valid partner name ([A-Za-z0-9._-], 1..64 chars)" >&2; exit 2
  fi
done

mkdir -p "$out/partners"
umask 077
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# Signs CSR $1 with the CA into certificate $2 using extension file $3.
sign() {
  openssl x509 -req -in "$1" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -CAserial "$out/ca.srl" -days "$days" -sha256 -extfile "$3" -out "$2" 2>/dev/null
  chmod 644 "$2"
}

if [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
  new_key "$tmp/ca.key"
  openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days "$((days * 2))" \
    -subj "/O=fedface vendor/CN=fedface vendor CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.crt" 2>/dev/null
  chmod 644 "$tmp/ca.crt"
  mv "$tmp/ca.key" "$out/ca.key"
  mv "$tmp/ca.crt" "$out/ca.crt"
  echo "make_certs: new CA $out/ca.crt"
fi

if [ ! -f "$out/vendor.crt" ] || [ ! -f "$out/vendor.key" ]; then
  san="DNS:localhost,IP:127.0.0.1,IP:::1"
  for n in ${server_names[@]+"${server_names[@]}"}; do
    if [[ "$n" =~ ^[0-9.]+$ ]] || [[ "$n" == *:* ]]; then san+=",IP:$n"; else san+=",DNS:$n"; fi
  done
  new_key "$tmp/vendor.key"
  openssl req -new -key "$tmp/vendor.key" -subj "/O=fedface vendor/CN=fedface-vendor" \
    -out "$tmp/vendor.csr" 2>/dev/null
  cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EXT
  sign "$tmp/vendor.csr" "$tmp/vendor.crt" "$tmp/server.ext"
  mv "$tmp/vendor.key" "$out/vendor.key"
  mv "$tmp/vendor.crt" "$out/vendor.crt"
  echo "make_certs: new server certificate $out/vendor.crt ($san)"
fi

for p in ${partners[@]+"${partners[@]}"}; do
  if [ -f "$out/partners/$p.crt" ] && [ -f "$out/partners/$p.key" ]; then
    echo "make_certs: partner $p exists, kept"
    continue
  fi
  new_key "$tmp/$p.key"
  openssl req -new -key "$tmp/$p.key" -subj "/O=fedface partner/CN=$p" -out "$tmp/$p.csr" \
    2>/dev/null
  cat > "$tmp/client.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth,serverAuth
subjectAltName=DNS:$p,DNS:localhost,IP:127.0.0.1,IP:::1
EXT
  sign "$tmp/$p.csr" "$tmp/$p.crt" "$tmp/client.ext"
  mv "$tmp/$p.key" "$out/partners/$p.key"
  mv "$tmp/$p.crt" "$out/partners/$p.crt"
  echo "make_certs: new partner certificate $out/partners/$p.crt (CN=$p)"
done
