#!/usr/bin/env bash
# Installs the npm packages the interop tests, end-to-end tests and benchmarks use:
# tests/interop (the automerge-repo 2.5.6 stack) and tests/interop/repo1 (the 1.2.1
# stack today's Groundmist apps run). Each folder is installed only when its
# package.json changed since its last install. Then tests/atproto (the atproto reference
# PDS + PLC and node 22, cached outside the checkout: scripts/install-atproto.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
for folder in tests/interop tests/interop/repo1; do
  cd "$root/$folder"
  stamp=node_modules/.installed-from
  if [ -f "$stamp" ] && cmp -s package.json "$stamp"; then
    continue
  fi
  npm install --no-audit --no-fund --loglevel=error
  cp package.json "$stamp"
done
bash "$root/scripts/install-atproto.sh"
