#!/usr/bin/env bash
# System packages the project needs beyond Python packages: WeasyPrint (PDF documents) loads Pango,
# HarfBuzz's subsetter and fontconfig from the system and needs at least one font; the browser tests
# need Debian's chromium, the proxy tests nginx; the imaging tests compress DICOM files with DCMTK's and GDCM's command-line
# tools (dcmcjpeg, dcmcjpls, dcmcrle, dcmconv, gdcmconv) and decode them with DCMTK for reference. Installs them with
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

# The FHIR profile validator the tests run (npm packages, kept inside the work tree).
bash "$(dirname "$0")/fhir-validator.sh"

packages=""
pdf_libraries_present || packages="libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core"
# The browser tests drive Debian's Chromium; a browser is never downloaded by the tests themselves.
command -v chromium >/dev/null || packages="$packages chromium"
# The imaging tests make every transfer syntax a sensor may write with the tools the DICOM world uses.
command -v dcmcjpeg >/dev/null || packages="$packages dcmtk"
command -v gdcmconv >/dev/null || packages="$packages libgdcm-tools"
# The proxy tests put Debian's nginx, with infra/nginx/referral.conf.template, in front of gunicorn.
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || packages="$packages nginx"
[ -z "$packages" ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = "0" ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
else
  echo "note: install these system packages for PDF documents and the browser tests: $packages" >&2
fi
