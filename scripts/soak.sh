#!/usr/bin/env bash
# `make soak` (issue 13): real automerge-repo clients (2.5.6, and every fourth a 1.2.1
# one) connect, create and edit documents and leave, a few at a time, for
# SOAK_MINUTES (default 30) against one `groundmist-sync serve` on a fresh data folder
# on 127.0.0.1, while the server's RSS and open file descriptors are sampled every 10 s
# (tests/interop/bench/soak.mjs). Prints whether memory stayed flat (the mean RSS of the
# last 20% of the run against that of 20–40%) and whether the fd count came back to
# its baseline once the clients left; fails if a session failed or an edit was lost.
#
#   scripts/soak.sh [BUILD_DIR]             (BIN=path overrides the binary)
#   SOAK_MINUTES=2 scripts/soak.sh          a quick run
# More arguments for soak.mjs via SOAK_ARGS, e.g. SOAK_ARGS="--concurrency 8", and for
# the server via SOAK_SERVE_ARGS, e.g. SOAK_SERVE_ARGS="--idle-unload 0.3" (documents
# unloaded and compacted between a session's edits: the race hunt of issue 13).
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${BIN:-$build/groundmist-sync}")
interop="$root/tests/interop"
group=xyz.groundmist.soak
minutes=${SOAK_MINUTES:-30}
[ -x "$bin" ] || { echo "soak: $bin not found (build it first, or set BIN)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gm-soak.XXXXXX")
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

data="$work/data"
mkdir -p -m 700 "$data"
# shellcheck disable=SC2086
"$bin" serve --port 0 --host 127.0.0.1 --data "$data" --log-level warn ${SOAK_SERVE_ARGS:-} >"$work/server.log" 2>"$work/server.err" &
server_pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.*listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "soak: the server exited before listening:" >&2; cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "soak: no listening line within 20 s" >&2; exit 1; }
url="ws://127.0.0.1:$port/?token=$("$bin" token --group "$group" --data "$data" --ttl 24h)"
echo "soak: commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' (modified)'), server pid $server_pid, $minutes min, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
status=0
# shellcheck disable=SC2086
(cd "$interop" && node bench/soak.mjs --url "$url" --pid "$server_pid" --minutes "$minutes" --out "$work/soak.json" ${SOAK_ARGS:-}) \
  2> >(sed -u "s/^/  [soak] /" >&2) || status=$?
kill -0 "$server_pid" 2>/dev/null || { echo "soak: the server died during the run:" >&2; tail -20 "$work/server.err" >&2; status=1; }
stop_server
echo "soak: server log: $(grep -c . "$work/server.err" || true) warning/error lines$( [ -s "$work/server.err" ] && echo ", the last:" )" >&2
tail -5 "$work/server.err" | sed 's/^/  [server] /' >&2
if [ -d "$build" ]; then
  mkdir -p "$build/bench-data"
  cp "$work/soak.json" "$build/bench-data/soak.json" 2>/dev/null || true
fi
exit "$status"
