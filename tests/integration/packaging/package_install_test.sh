#!/usr/bin/env bash
# Builds fedface-partner and fedface-vendor (cpack), installs them with apt-get, checks what an
# operator gets (binaries that run, a detect on a sample photo, man pages, the service user and
# state folders, units that systemd-analyze verifies, the example configurations' keys), then
# purges them and checks that nothing is left. Exit 77 (skip) when not root, unless CI=true.
set -euo pipefail
build=${FEDFACE_BINARY_DIR:?}
faceapi=${FEDFACE_FACEAPI_DIR:?}
fail() { echo "package_install_test: FAIL: $*" >&2; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then fail "$* (CI=true: every check must run)"; fi
  echo "package_install_test: SKIP: $*"; exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root to install packages"
for tool in cpack apt-get dpkg-shlibdeps help2man; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/setup.sh installs it)"
done
for pkg in fedface-partner fedface-vendor; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
    fail "$pkg is already installed on this machine; this test will not replace it"
  fi
done

out=$(mktemp -d)
purge() { dpkg --purge fedface-partner fedface-vendor >/dev/null 2>&1 || true; rm -rf "$out"; }
trap purge EXIT

echo "== cpack"
(cd "$build" && cpack -G DEB -B "$out" >"$out/cpack.log" 2>&1) || { cat "$out/cpack.log"; fail "cpack"; }
partner_deb=$(ls "$out"/fedface-partner_*.deb) || fail "no fedface-partner .deb"
vendor_deb=$(ls "$out"/fedface-vendor_*.deb) || fail "no fedface-vendor .deb"
for deb in "$partner_deb" "$vendor_deb"; do
  printf '%s: %s KiB; Depends: %s\n' "$(basename "$deb")" "$(( $(stat -c %s "$deb") / 1024 ))" \
    "$(dpkg-deb -f "$deb" Depends)"
done
# dpkg-shlibdeps found the libraries the binaries link, and the data they open is declared.
# (Outputs are read whole before matching: `grep -q` closing a pipe early fails under pipefail.)
depends=$(dpkg-deb -f "$partner_deb" Depends)
contents=$(dpkg-deb -c "$partner_deb")
conffiles=$(dpkg-deb --ctrl-tarfile "$partner_deb" | tar -xO ./conffiles)
grep -q "libgrpc++1.51" <<<"$depends" || fail "partner Depends lacks gRPC"
grep -q "libdlib-data" <<<"$depends" || fail "partner Depends lacks libdlib-data"
grep -q "etc/fedface/partner.yaml" <<<"$contents" || fail "no example configuration"
grep -qx /etc/fedface/partner.yaml <<<"$conffiles" ||
  fail "/etc/fedface/partner.yaml is not a conffile (an upgrade would overwrite the operator's edits)"

# Every path the packages hold, and which of them existed before (shared folders such as
# /usr/lib/systemd/system): after purge nothing new may remain.
listed=$(for deb in "$partner_deb" "$vendor_deb"; do dpkg-deb -c "$deb" | awk '{print $6}'; done |
         sed 's|^\.||; s|/$||' | sort -u)
existed=$(while IFS= read -r path; do [ -e "$path" ] && echo "$path"; done <<<"$listed" || true)

echo "== apt-get install"
start=$(date +%s%N)
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  "$partner_deb" "$vendor_deb" >"$out/apt.log" 2>&1 || { cat "$out/apt.log"; fail "apt-get install"; }
echo "installed in $(( ($(date +%s%N) - start) / 1000000 )) ms"

echo "== installed binaries"
grep -q "^partner_node " <<<"$(/usr/bin/partner_node --version)" || fail "partner_node --version"
grep -q "^model_vendor " <<<"$(/usr/bin/model_vendor --version)" || fail "model_vendor --version"
detect=$(runuser -u fedface -- /usr/bin/partner_node detect --json "$faceapi/demo/sample1.jpg") ||
  fail "detect as the fedface user"
faces=$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(i["faces"]) for i in d["images"]) if "images" in d else len(d["faces"]))' <<<"$detect") ||
  fail "detect printed no JSON: $detect"
[ "$faces" -gt 0 ] || fail "detect found no face on sample1.jpg"
echo "detect (as user fedface): $faces faces on sample1.jpg"
grep -q "usage:" <<<"$(/usr/bin/fedface-make-certs --help 2>&1)" || fail "fedface-make-certs"
grep -qi "pcap" <<<"$(FEDFACE_PARTNER_NODE= /usr/bin/fedface-audit --help 2>&1)" || fail "fedface-audit"
grep -q "releases" <<<"$(zcat /usr/share/man/man1/partner_node.1.gz)" || fail "partner_node man page"
grep -q "keygen" <<<"$(zcat /usr/share/man/man1/model_vendor.1.gz)" || fail "model_vendor man page"

echo "== service user, state, configuration"
getent passwd fedface | grep -q ":/usr/sbin/nologin$" || fail "no system user fedface with nologin"
[ "$(stat -c '%U %a' /var/lib/fedface/partner)" = "fedface 700" ] || fail "/var/lib/fedface/partner"
[ "$(stat -c '%G %a' /etc/fedface/pki)" = "fedface 750" ] || fail "/etc/fedface/pki"
# The example configurations name only known keys: what is missing is the operator's
# certificates, never a key the binary does not know.
for pair in "partner_node models list --config /etc/fedface/partner.yaml" \
            "model_vendor rounds list --config /etc/fedface/vendor.yaml"; do
  msg=$(/usr/bin/$pair 2>&1) && fail "$pair ran without certificates"
  case $msg in
    *"unknown key"* | *"wrong type"* | *"duplicate key"* | *"out of range"*) fail "$pair: $msg" ;;
    *pki/*) echo "example configuration checked: ${msg:0:110}" ;;
    *) fail "$pair: unexpected error: $msg" ;;
  esac
done

echo "== systemd units"
if command -v systemd-analyze >/dev/null; then
  for unit in fedface-partner fedface-vendor; do
    systemd-analyze verify "/usr/lib/systemd/system/$unit.service" >"$out/verify.log" 2>&1 ||
      { cat "$out/verify.log"; fail "systemd-analyze verify $unit"; }
    ! grep -q "$unit" "$out/verify.log" || { cat "$out/verify.log"; fail "$unit: warnings"; }
    score=$(systemd-analyze security --offline=true "/usr/lib/systemd/system/$unit.service" 2>/dev/null |
            grep -o "Overall exposure level.*" || true)
    echo "$unit: verified; ${score:-exposure not available}"
  done
else
  skip "systemd-analyze is absent (Debian's systemd package): the units cannot be verified"
fi

echo "== purge"
dpkg --purge fedface-partner fedface-vendor >"$out/purge.log" 2>&1 || { cat "$out/purge.log"; fail "purge"; }
left=()
while IFS= read -r path; do
  [ -n "$path" ] || continue
  grep -qxF "$path" <<<"$existed" && continue
  [ -e "$path" ] && left+=("$path")
done <<<"$listed"
for path in /etc/fedface /var/lib/fedface; do [ -e "$path" ] && left+=("$path"); done
[ ${#left[@]} -eq 0 ] || fail "left behind after purge: ${left[*]}"
! getent passwd fedface >/dev/null || fail "user fedface left behind after purge"
! getent group fedface >/dev/null || fail "group fedface left behind after purge"
echo "package_install_test: PASS (installed, checked, purged; nothing left)"
