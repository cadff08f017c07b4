#!/usr/bin/env bash
# `make bench-scale` (issue 13): how the server scales with idle sockets and with the
# number of stored documents, against the JS reference server (npm automerge-repo
# 2.5.6 + NodeFS, tests/interop/bench/js_reference_server.mjs) in the same run, on
# 127.0.0.1 (the client side: tests/interop/bench/scale_bench.mjs):
#
#  1. sockets: SCALE_SOCKETS (default 10,000) raw automerge-repo peers, each joining
#     with a valid token, held idle; server memory per socket = RSS growth / count.
#  2. documents: for each count in SCALE_DOCS (default "1000 10000 100000") a data
#     folder of that many small documents in one group (written directly in the NodeFS
#     layout); the server's start-up time (spawn to the first accepted connection,
#     median of 5) and how long the group's first socket takes to join; then on a
#     freshly started server the first sync of one document: a fresh 2.5.6 client
#     finding it by URL until ready, in a fresh node process (the group's first
#     socket), then 4 more fresh clients (each a new socket) for 4 other documents,
#     then the server's answer to a raw request for 5 more.
#
#   scripts/bench-scale.sh [BUILD_DIR]       (BIN=path overrides the binary)
# SCALE_SKIP_JS=1 leaves the JS reference server out.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(realpath "${BIN:-$build/groundmist-sync}")
interop="$root/tests/interop"
bench="node bench/scale_bench.mjs"
group=xyz.groundmist.scale
group_path=xyz/groundmist/scale
sockets=${SCALE_SOCKETS:-10000}
doc_counts=${SCALE_DOCS-"1000 10000 100000"}
[ -x "$bin" ] || { echo "bench-scale: $bin not found (build it first, or set BIN)" >&2; exit 1; }
# Each socket is a file descriptor on both ends.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((sockets + 512)) ]; then
  echo "bench-scale: ulimit -n is $(ulimit -n), too low for $sockets sockets (SCALE_SOCKETS=…)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gm-bench-scale.XXXXXX")
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

wait_listening() {
  local log=$1
  for _ in $(seq 600); do
    local port
    port=$(sed -n 's/.*listening on [a-z]*:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "bench-scale: the server exited before listening:" >&2; cat "$log" "$log.err" >&2; return 1; }
    sleep 0.1
  done
  echo "bench-scale: no listening line within 60 s" >&2
  return 1
}

# Limits raised for the socket count (the defaults: 4096 connections, 1024 per group,
# 256 per token).
cpp_limits=(--max-connections $((sockets + 256)) --max-sockets-per-group "$sockets" --max-sockets-per-token "$sockets")
# The argv of a KIND server on data folder DATA (the JS one serves the group folder).
server_argv() {
  local kind=$1 data=$2
  if [ "$kind" = cpp ]; then
    echo "$bin" serve --port 0 --host 127.0.0.1 --data "$data" --log-level warn "${cpp_limits[@]}"
  else
    echo node "$interop/bench/js_reference_server.mjs" --port 0 --host 127.0.0.1 --data "$data/$group_path"
  fi
}
# start_server KIND DATA LOG: sets server_pid and url.
start_server() {
  local kind=$1 data=$2 log=$3 port
  # shellcheck disable=SC2046
  (cd "$interop" && exec $(server_argv "$kind" "$data")) >"$log" 2>"$log.err" &
  server_pid=$!
  port=$(wait_listening "$log")
  if [ "$kind" = cpp ]; then
    url="ws://127.0.0.1:$port/?token=$("$bin" token --group "$group" --data "$data")"
  else
    url="ws://127.0.0.1:$port/?token=unused"
  fi
}
kinds="cpp"
[ -n "${SCALE_SKIP_JS:-}" ] || kinds="cpp js"
echo "bench-scale: commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src || echo ' (modified)'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# 1. Idle sockets.
for kind in $kinds; do
  data="$work/sockets-$kind"
  mkdir -p -m 700 "$data" && mkdir -p "$data/$group_path"
  start_server "$kind" "$data" "$work/sockets-$kind.log"
  echo "bench-scale: $sockets sockets to the $kind server (pid $server_pid)" >&2
  (cd "$interop" && $bench sockets --url "$url" --pid "$server_pid" --count "$sockets" --label "$kind" \
    --out "$work/sockets-$kind.json") 2> >(sed -u "s/^/  [sockets $kind] /" >&2) >/dev/null
  stop_server
done

# 2. Documents: start-up and first sync.
for n in $doc_counts; do
  data="$work/docs-$n"
  mkdir -p -m 700 "$data"
  echo "bench-scale: writing $n documents" >&2
  (cd "$interop" && $bench gen-docs --dir "$data/$group_path" --docs "$n" --ids "$work/ids-$n.txt") 2> >(sed -u "s/^/  [docs $n] /" >&2)
  token=$("$bin" token --group "$group" --data "$data")
  for kind in $kinds; do
    # shellcheck disable=SC2046
    argv=$(node -e 'console.log(JSON.stringify(process.argv.slice(1)))' $(server_argv "$kind" "$data"))
    (cd "$interop" && $bench startup --cmd "$argv" --runs 5 --token "$token" --label "$kind $n" \
      --out "$work/startup-$kind-$n.json") >/dev/null
    start_server "$kind" "$data" "$work/first-$kind-$n.log"
    docs=$(shuf -n 10 --random-source=<(yes) "$work/ids-$n.txt" | paste -sd,)
    (cd "$interop" && $bench first-sync --url "$url" --doc "$docs" --label "$kind $n" --out "$work/first-$kind-$n.json") \
      >/dev/null || echo "bench-scale: first sync on the $kind server with $n documents failed" >&2
    stop_server
  done
  du -sh "$data" | sed -u "s/^/  [docs $n] /" >&2
  [ "$n" = "$(echo "$doc_counts" | awk '{print $NF}')" ] || rm -rf "$data"
done

# Keep the raw numbers beside the other benchmarks' data.
if [ -d "$build" ]; then
  mkdir -p "$build/bench-data"
  rm -f "$build/bench-data"/scale-*.json
  for f in "$work"/*.json; do cp "$f" "$build/bench-data/scale-$(basename "$f")"; done
fi
(cd "$interop" && node bench/scale_bench.mjs table --dir "$work" --kinds "$kinds" --counts "$doc_counts")
