#!/usr/bin/env bash
# The edit-latency benchmark of `make bench` (issue 12): how long a one-key edit takes
# from one client to another through the server, alone and while other clients upload
# a 50k-change document and open a stored 4-million-character one
# (tests/interop/bench/latency_bench.mjs, real automerge-repo 2.5.6 clients). Runs
# against `groundmist-sync serve` and then the JS reference server
# (tests/interop/bench/js_reference_server.mjs) in this run, each with a fresh data
# folder holding the big document (written before the server starts, as npm saves
# it), on 127.0.0.1. Prints a markdown table (ratio = C++ / JS; below 1 is better).
#
#   scripts/bench-latency.sh [BUILD_DIR]       (BIN=path overrides the binary)
# Extra arguments for `latency_bench.mjs run` via BENCH_LATENCY_ARGS, e.g.
# BENCH_LATENCY_ARGS="--edits 50".
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$build/groundmist-sync}
interop="$root/tests/interop"
group=xyz.groundmist.bench
[ -x "$bin" ] || { echo "bench-latency: $bin not found (build it first, or set BIN)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gm-bench-latency.XXXXXX")
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill "$server_pid" 2>/dev/null || true
  for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# wait_listening LOG: the port from the server's "listening on …://127.0.0.1:PORT" line.
wait_listening() {
  local log=$1
  for _ in $(seq 200); do
    local port
    port=$(sed -n 's/.*listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "bench-latency: the server exited before listening:" >&2; cat "$log" "$log.err" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-latency: no listening line within 20 s" >&2
  return 1
}

# start_server KIND DATA LOG: starts a KIND server on DATA; sets server_pid and url.
start_server() {
  local kind=$1 data=$2 log=$3 port
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
  echo "bench-latency: $kind server pid $server_pid on port $port" >&2
}

# run_one KIND: fresh data folder with the big document; a KIND server opens it once
# (the first open of a snapshot written by another program: this server reads it in
# full to check it), then a fresh KIND server on the same folder is driven through
# the phases; writes $work/KIND-first.json and $work/KIND.json.
run_one() {
  local kind=$1 data="$work/data-$1" log="$work/$1.log" big status=0
  mkdir -p "$data"
  big=$(cd "$interop" && node bench/latency_bench.mjs prepare --data "$data" --kind "$kind")
  start_server "$kind" "$data" "$log.first"
  (cd "$interop" && node bench/latency_bench.mjs run --url "$url" --big "$big" --out "$work/$kind-first.json" \
    --edits 1 --load open) 2> >(sed "s/^/  [$kind first open] /" >&2) || status=$?
  stop_server
  start_server "$kind" "$data" "$log"
  # shellcheck disable=SC2086
  (cd "$interop" && node bench/latency_bench.mjs run --url "$url" --big "$big" --out "$work/$kind.json" ${BENCH_LATENCY_ARGS:-}) \
    2> >(sed "s/^/  [$kind] /" >&2) || status=$?
  kill -0 "$server_pid" 2>/dev/null || { echo "bench-latency: the $kind server died during the run:" >&2; tail -20 "$log.err" >&2; }
  stop_server
  return "$status"
}

run_one cpp
run_one js
echo
# Keep the raw numbers beside the other benchmarks' data (not when BIN names another binary).
if [ -z "${BIN:-}" ] && [ -d "$build" ]; then
  mkdir -p "$build/bench-data"
  cp "$work/cpp.json" "$build/bench-data/latency-cpp.json"
  cp "$work/js.json" "$build/bench-data/latency-js.json"
fi
(cd "$interop" && node bench/latency_bench.mjs table "$work/cpp.json" "$work/js.json" "$work/cpp-first.json" "$work/js-first.json")
