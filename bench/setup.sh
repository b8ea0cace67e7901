#!/usr/bin/env bash
# What the benchmarks need beyond the project's own packages: Orthanc (the DICOM server the intake benchmark
# compares against) and wrk (the load generator of the read benchmark), from Debian. Installed with apt-get
# when missing and this machine can; otherwise says what is missing and carries on (the benchmarks that need
# them then fail with a message, the others run).
set -uo pipefail

packages=""
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || packages="orthanc"
command -v wrk >/dev/null || packages="$packages wrk"
[ -z "${packages// /}" ] && exit 0

if ! command -v apt-get >/dev/null || [ "$(id -u)" != "0" ]; then
  echo "note: install these Debian packages for the benchmarks: $packages" >&2
  exit 0
fi

# The orthanc package would start its own system service where an init system runs. The benchmark starts a
# private Orthanc on a free port and needs no service, so service starts are refused while installing
# (policy-rc.d, Debian's switch for exactly this), unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages
