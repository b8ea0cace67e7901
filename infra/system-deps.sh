#!/usr/bin/env bash
# System libraries the project needs beyond Python packages: WeasyPrint (PDF documents) loads Pango,
# HarfBuzz's subsetter and fontconfig from the system and needs at least one font. Installs them with
# apt-get when they are missing and this machine can; otherwise says what is missing and carries on
# (the server runs without them; PDF documents then answer 503).
set -uo pipefail

pdf_libraries_present() {
  local lib known
  # Read once into a variable: under pipefail, grep -q closing the pipe early would fail the pipeline.
  known=$(PATH="$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null || true)
  for lib in libpango-1.0.so.0 libpangoft2-1.0.so.0 libharfbuzz-subset.so.0; do
    grep -qF "$lib" <<<"$known" || return 1
  done
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]
}

pdf_libraries_present && exit 0
packages="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core"
if command -v apt-get >/dev/null && [ "$(id -u)" = "0" ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
else
  echo "note: PDF documents need these system packages: $packages" >&2
fi
