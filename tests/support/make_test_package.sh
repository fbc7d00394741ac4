#!/usr/bin/env bash
# ctest fixture: converts and signs the real face-api weights once per build tree, so tests load a
# real package. Skips (exit 0, leaving nothing) when the weights have not been fetched.
set -euo pipefail
: "${FEDFACE_TEST_PACKAGE:?}" "${FEDFACE_TEST_VENDOR_KEY:?}" "${FEDFACE_MODEL_VENDOR:?}"
if [ ! -f "${FEDFACE_FACEAPI_DIR:-}/.complete" ]; then
  echo "face-api weights absent (run scripts/fetch_model.sh); tests that need a package will skip"
  exit 0
fi
if [ -f "$FEDFACE_TEST_PACKAGE/manifest.sig" ] && [ -f "$FEDFACE_TEST_VENDOR_KEY.pub" ] &&
   [ "$FEDFACE_TEST_PACKAGE/manifest.sig" -nt "$FEDFACE_MODEL_VENDOR" ]; then
  echo "test package up to date: $FEDFACE_TEST_PACKAGE"
  exit 0
fi
rm -rf "$FEDFACE_TEST_PACKAGE" "$FEDFACE_TEST_VENDOR_KEY" "$FEDFACE_TEST_VENDOR_KEY.pub"
mkdir -p "$(dirname "$FEDFACE_TEST_PACKAGE")" "$(dirname "$FEDFACE_TEST_VENDOR_KEY")"
"$FEDFACE_MODEL_VENDOR" keygen --out "$FEDFACE_TEST_VENDOR_KEY"
"$FEDFACE_MODEL_VENDOR" package --faceapi "$FEDFACE_FACEAPI_DIR" --version 1.0.0 \
  --key "$FEDFACE_TEST_VENDOR_KEY" --out "$FEDFACE_TEST_PACKAGE"
