#!/usr/bin/env bash
# Copies the front-end libraries from web/node_modules (npm) into web/static/vendor, which the Go
# package web embeds. `make` runs it when web/node_modules exists; without it the binary embeds the
# committed stand-ins in web/static/vendor-fallback, which tell the page the library is missing.
set -euo pipefail
cd "$(dirname "$0")/../web"

nm=node_modules
out=static/vendor
if [ ! -d "$nm" ]; then
  echo "web.sh: $PWD/$nm is missing: run 'npm ci' in web/ first" >&2
  exit 1
fi
mkdir -p "$out.tmp"
trap 'rm -rf "$out.tmp"' EXIT

copy() { # copy SRC DST: fail loudly if the package layout changed
  if [ ! -f "$1" ]; then
    echo "web.sh: $1 not found (package layout changed?)" >&2
    exit 1
  fi
  cp "$1" "$2"
}
copy "$nm/hls.js/dist/hls.min.js" "$out.tmp/hls.min.js"
copy "$nm/hls.js/LICENSE" "$out.tmp/hls.js.LICENSE.txt"
copy "$nm/mpegts.js/dist/mpegts.js" "$out.tmp/mpegts.js"
copy "$nm/mpegts.js/LICENSE" "$out.tmp/mpegts.js.LICENSE.txt"
{
  echo "Built by scripts/web.sh from web/node_modules (see web/package-lock.json):"
  for p in hls.js mpegts.js; do
    printf '%s %s\n' "$p" "$(sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$nm/$p/package.json" | head -1)"
  done
} >"$out.tmp/VERSIONS.txt"
# Only replace the vendor folder when something changed, so builds stay cheap and reproducible.
if [ -d "$out" ] && diff -rq "$out.tmp" "$out" >/dev/null 2>&1; then
  exit 0
fi
rm -rf "$out"
mv "$out.tmp" "$out"
echo "web.sh: vendor libraries copied into web/$out"
