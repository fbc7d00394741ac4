#!/usr/bin/env bash
# Fetches the face-api model weights and sample photos from the npm registry (the only download
# fedface ever makes), checks the tarball against a pinned sha256, and extracts just the files we
# use into a git-ignored cache. Prints the cache folder. Idempotent.
#
#   scripts/fetch_model.sh            -> .cache/face-api-1.7.15 (or $FEDFACE_CACHE/face-api-1.7.15)
set -euo pipefail

readonly PACKAGE="@vladmandic/face-api"
readonly VERSION="1.7.15"
readonly TARBALL_SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"

root=$(cd "$(dirname "$0")/.." && pwd)
cache_root=${FEDFACE_CACHE:-$root/.cache}
dest="$cache_root/face-api-$VERSION"
marker="$dest/.complete"

if [ -f "$marker" ]; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null || { echo "fetch_model: npm is missing; run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$cache_root"
work=$(mktemp -d "$cache_root/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" >/dev/null)
tarball="$work/vladmandic-face-api-$VERSION.tgz"
actual=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$actual" != "$TARBALL_SHA256" ]; then
  echo "fetch_model: $PACKAGE@$VERSION tarball sha256 is $actual, pinned $TARBALL_SHA256; refusing it" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work" \
  package/LICENSE \
  package/model/face_recognition_model.bin \
  package/model/face_recognition_model-weights_manifest.json \
  package/demo/sample1.jpg package/demo/sample2.jpg package/demo/sample3.jpg \
  package/demo/sample4.jpg package/demo/sample5.jpg package/demo/sample6.jpg
rm -rf "$dest"
mv "$work/package" "$dest"
touch "$marker"
echo "$dest"
