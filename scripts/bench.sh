#!/usr/bin/env bash
# `make bench`: runs the C++ engine and npm @automerge/automerge on the same work in
# the same run and prints time and peak-memory ratios (C++ / JS; below 1 is better).
# BENCH_ENGINE_ONLY=1: the engine tables only, not the server's and the latency.
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
js="node --max-old-space-size=8000 $root/tests/interop/bench/automerge_bench.mjs"
cpp="$build/bench/automerge_bench"
work="$build/bench-data"
mkdir -p "$work"
small="$work/small-changes.amrg"
if [ ! -f "$small" ]; then
  echo "generating the many-small-changes document (once; ~2 min)"
  (cd "$root/tests/interop" && $js make-small "$small" 20000)
fi
# Two changes of millions of ops each way: one text typed at once, then five letters.
for ops in 4700000 9400000; do
  if [ ! -f "$work/big-$ops.amrg" ]; then
    echo "generating the $ops-op document (once)"
    (cd "$root/tests/interop" && node --max-old-space-size=8000 bench/automerge_bench.mjs make-big "$work/big-$ops.amrg" $ops)
  fi
done
shared=$root/../shared; [ -d "$shared/spec" ] || shared=/work/shared
text="$shared/data/automerge-perf/text-doc.amrg"

# mean_ms CMD...: the "ms" field of the command's JSON line.
mean_ms() { (cd "$root/tests/interop" && "$@") | sed -n 's/.*"ms":\([0-9.]*\).*/\1/p'; }
# peak_kb CMD...: peak resident set of the whole process, KiB.
peak_kb() { (cd "$root/tests/interop" && /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

printf "| document | operation | C++ ms | JS ms | time ratio |\n|---|---|---|---|---|\n"
for doc in text small; do
  file=$text; [ $doc = small ] && file=$small
  for op in load save json; do
    iters=3; [ $op = json ] && iters=10; [ $op = save ] && iters=10
    c=$(mean_ms "$cpp" run $op "$file" $iters)
    j=$(mean_ms $js run $op "$file" $iters)
    printf "| %s | %s | %.1f | %.1f | %s |\n" $doc $op "$c" "$j" "$(ratio "$c" "$j")"
  done
done
for doc in big-4700000 big-9400000; do
  for op in load save json; do
    c=$(mean_ms "$cpp" run $op "$work/$doc.amrg" 1)
    j=$(mean_ms $js run $op "$work/$doc.amrg" 1)
    printf "| %s | %s | %.1f | %.1f | %s |\n" $doc $op "$c" "$j" "$(ratio "$c" "$j")"
  done
done
printf "\n| document | peak RSS C++ MiB | peak RSS JS MiB | memory ratio |\n|---|---|---|---|\n"
for doc in text small big-4700000 big-9400000; do
  file=$text; [ $doc = small ] && file=$small; [[ $doc = big-* ]] && file=$work/$doc.amrg
  c=$(peak_kb "$cpp" run all "$file" 1)
  j=$(peak_kb $js run all "$file" 1)
  printf "| %s (load, save, reload, JSON) | %.1f | %.1f | %s |\n" $doc "$(awk -v k="$c" 'BEGIN{print k/1024}')" "$(awk -v k="$j" 'BEGIN{print k/1024}')" "$(ratio "$c" "$j")"
done
[ "${BENCH_ENGINE_ONLY:-}" = 1 ] && exit 0  # the engine tables only
bash "$root/scripts/bench-server.sh" "$build"
echo
echo "Edit latency:"
echo
bash "$root/scripts/bench-latency.sh" "$build"
echo
echo "JSON API (issue 14):"
echo
(cd "$root/tests/interop" && node bench/api_bench.mjs --bin "$build/groundmist-sync" --text "$shared/data/automerge-perf/text-doc-50k.amrg")
