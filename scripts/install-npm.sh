#!/usr/bin/env bash
# Installs the npm packages the interop tests and benchmarks use (tests/interop),
# only when package.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/../tests/interop"
stamp=node_modules/.installed-from
if [ -f "$stamp" ] && cmp -s package.json "$stamp"; then
  exit 0
fi
npm install --no-audit --no-fund --loglevel=error
cp package.json "$stamp"
