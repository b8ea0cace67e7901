#!/usr/bin/env bash
# The tests' FHIR profile validator: Medplum's validator and the FHIR R4 definitions it ships, from the npm
# registry, into tests/support/fhir_validator/node_modules (tests/support/fhir_checker.py runs it with Node). Installs only when
# package-lock.json changed since the last install; with no registry reachable, an existing install is kept.
set -uo pipefail

dir="$(cd "$(dirname "$0")/.." && pwd)/tests/support/fhir_validator"
stamp="$dir/node_modules/.installed-from-lock"

if ! command -v npm >/dev/null; then
  echo "note: npm is missing; install Node.js 20 or later for the FHIR profile tests" >&2
  exit 0
fi
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
  exit 0
fi
# --ignore-scripts: the packages need no build step, and none is run.
if (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error); then
  cp "$dir/package-lock.json" "$stamp"
elif [ -d "$dir/node_modules/@medplum/core" ]; then
  echo "note: could not refresh the FHIR validator from the npm registry; keeping the installed one" >&2
else
  echo "note: could not install the FHIR validator from the npm registry; the FHIR profile tests will fail" >&2
fi
exit 0
