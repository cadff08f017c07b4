#!/usr/bin/env bash
# The server half of `make bench` (issue 3): the same client workloads
# (tests/interop/bench/server_bench.mjs, real automerge-repo 2.5.6 clients) against
# `groundmist-sync serve` and against the JS reference sync server
# (tests/interop/bench/js_reference_server.mjs: automerge-repo 2.5.6 + NodeFS), one
# after the other in this run, each with a fresh data folder, on 127.0.0.1: first one
# server of each kind through every phase, then each workload on a freshly started
# server. Prints two markdown tables of server CPU seconds and memory (ratio = C++ /
# JS; below 1 is better).
#
#   scripts/bench-server.sh [BUILD_DIR]
# Extra arguments for server_bench.mjs (e.g. smaller workloads) via BENCH_SERVER_ARGS,
# e.g. BENCH_SERVER_ARGS="--docs 50 --clients 10 --idle 2 --idle-late 2".
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
bin="$build/groundmist-sync"
interop="$root/tests/interop"
bench="$interop/bench/server_bench.mjs"
group=xyz.groundmist.bench
[ -x "$bin" ] || { echo "bench-server: $bin not found (build it first)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gm-bench-server.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_listening LOG: the port from the server's "listening on …://127.0.0.1:PORT" line.
wait_listening() {
  local log=$1
  for _ in $(seq 200); do
    local port
    port=$(sed -n 's/.*listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "bench-server: the server exited before listening:" >&2; cat "$log" "$log.err" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-server: no listening line within 20 s" >&2
  return 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# run_one KIND NAME [ARGS…]: start a fresh KIND server with an empty data folder,
# drive it (server_bench.mjs run … ARGS), write $work/NAME.json. Fails if the driver
# does (node itself has crashed in it, a V8 fatal error): `run KIND NAME …` tries twice.
run_one() {
  local kind=$1 name=$2 data="$work/data-$2" log="$work/$2.log" url port status=0
  shift 2
  rm -rf "$data"
  mkdir -p "$data"
  if [ "$kind" = cpp ]; then
    "$bin" serve --port 0 --host 127.0.0.1 --data "$data" --log-level warn >"$log" 2>"$log.err" &
    server_pid=$!
    port=$(wait_listening "$log")
    url="ws://127.0.0.1:$port/?token=$("$bin" token --group "$group" --data "$data")"
  else
    (cd "$interop" && exec node bench/js_reference_server.mjs --port 0 --host 127.0.0.1 --data "$data") >"$log" 2>"$log.err" &
    server_pid=$!
    port=$(wait_listening "$log")
    url="ws://127.0.0.1:$port/?token=unused"
  fi
  echo "bench-server: $name: $kind server pid $server_pid on port $port" >&2
  # shellcheck disable=SC2086
  (cd "$interop" && node bench/server_bench.mjs run --url "$url" --pid "$server_pid" --out "$work/$name.json" ${BENCH_SERVER_ARGS:-} "$@") \
    2> >(sed "s/^/  [$name] /" >&2) || status=$?
  kill -0 "$server_pid" 2>/dev/null || { echo "bench-server: the $kind server died during the run:" >&2; tail -20 "$log.err" >&2; }
  stop_server
  # Bytes of the document files (the session secret excluded), as KiB.
  find "$data" -type f -not -path '*/.groundmist/*' -printf '%s\n' | awk '{ s += $1 } END { print s / 1024 }' >"$work/$name.data-kb"
  return "$status"
}

run() {
  run_one "$@" && return 0
  echo "bench-server: the $2 run failed; once more, on a fresh server" >&2
  run_one "$@"
}

# 1. One server of each kind through every phase in turn, then idle (d).
run cpp cpp
run js js
# 2. Each workload (a, b, c) alone on a freshly started server of each kind: its own
# cost, not what a heap already grown by the earlier phases absorbs.
for kind in cpp js; do
  fresh=()
  for phases in a-push,a-fetch b c-push,c-fetch; do
    run "$kind" "$kind-fresh-${phases%%-*}" --only "$phases" --idle 0 --idle-late 0
    fresh+=("$work/$kind-fresh-${phases%%-*}.json")
  done
  (cd "$interop" && node bench/server_bench.mjs merge "$work/$kind-fresh.json" "${fresh[@]}")
done
echo
# Keep the raw numbers beside the engine benchmark's data.
mkdir -p "$build/bench-data"
for name in cpp js cpp-fresh js-fresh; do cp "$work/$name.json" "$build/bench-data/server-$name.json"; done
echo "One server of each kind through every phase in turn:"
echo
(cd "$interop" && node bench/server_bench.mjs table "$work/cpp.json" "$work/js.json" "$(cat "$work/cpp.data-kb")" "$(cat "$work/js.data-kb")")
echo
echo "Each workload alone on a freshly started server:"
echo
(cd "$interop" && node bench/server_bench.mjs table "$work/cpp-fresh.json" "$work/js-fresh.json")
