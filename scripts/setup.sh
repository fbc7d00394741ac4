#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the demo need, then makes OpenBLAS
# the system BLAS (dlib's DNN is ~14x slower on Debian's reference BLAS). Idempotent: a second run
# only checks. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake pkg-config ninja-build git ca-certificates
  libdlib-dev libdlib-data
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libopenblas0-pthread libopenblas-dev liblapack-dev libblas3
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev sqlite3 libssl-dev openssl
  postgresql-15 libpq-dev  # the PostgreSQL gallery store and its tests (a throw-away cluster)
  libfaiss-dev nlohmann-json3-dev libyaml-cpp-dev
  libdnnl-dev  # the onednn embedding backend
  libjpeg62-turbo-dev  # colour JPEGs decoded straight to RGB (core/engine/jpeg_rgb_decoder.cc)
  libpcap-dev libnghttp2-dev tcpdump tshark iproute2 procps
  chromium
  python3 python3-jsonschema
  help2man dpkg-dev adduser systemd  # the Debian packages and their test
  clang libclang-rt-14-dev llvm  # scripts/fuzz.sh: libFuzzer, ASan/UBSan runtimes, symbolizer
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node.js may come from elsewhere (its npm conflicts with Debian's); only npm pack is needed.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
else
  echo "setup: all ${#packages[@]} Debian packages present"
fi

# Point libblas.so.3 / liblapack.so.3 at the pthread OpenBLAS build.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target="/usr/lib/${arch}/openblas-pthread/${lib}"
  if [ -e "$target" ]; then
    "${sudo_cmd[@]}" update-alternatives --set "${lib}-${arch}" "$target" >/dev/null
  fi
done
echo "setup: BLAS is $(readlink -f "/usr/lib/${arch}/libblas.so.3")"
