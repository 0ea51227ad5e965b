#!/usr/bin/env bash
# Installs what the tests need: Debian packages (ffmpeg, chromium, redis, haproxy, nginx) and the
# web front-end's npm packages. Idempotent and quiet: it does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
fonts=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
[ -f "$fonts" ] || need+=(fonts-dejavu-core)

if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts these daemons on install; tests run their own instances on private ports.
  for svc in redis-server haproxy nginx; do
    if command -v systemctl >/dev/null 2>&1; then systemctl stop "$svc" >/dev/null 2>&1 || true; fi
    service "$svc" stop >/dev/null 2>&1 || true
  done
fi

if [ -f web/package.json ] && [ ! -d web/node_modules ]; then
  echo "deps: npm install (web)"
  (cd web && npm ci --silent --no-audit --no-fund >/dev/null 2>&1 || npm install --silent --no-audit --no-fund >/dev/null)
fi
