#!/usr/bin/env bash
# Task start+finish cost of two builds, interleaved round by round on one
# machine (so both see the same noise): each round starts each build's own
# sidecar and runs its client_bench against it, and prints the sidecar's CPU
# time (user + system) per pair it took in.
#   tests/bench/compare_builds.sh BUILD_A BUILD_B [ROUNDS [CLIENT_BENCH_ARGS...]]
# CLIENT_BENCH_ARGS: after the socket (default: 1 4000 2000, one process
# paced at 2,000 pairs/s; a build before one-way starts takes PROCESSES PAIRS).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BUILD_A BUILD_B [ROUNDS [CLIENT_BENCH_ARGS...]]" >&2; exit 2; }
a=$1 b=$2
rounds=${3:-5}
shift $(( $# < 3 ? $# : 3 ))
args=("$@")
[ $# -gt 0 ] || args=(1 4000 2000)
work=$(mktemp -d)
sidecar=
trap '[ -n "$sidecar" ] && kill "$sidecar" 2>/dev/null; rm -rf "$work"' EXIT
echo "== client_bench SOCKET ${args[*]}, $rounds interleaved rounds, $(nproc) cores =="
for round in $(seq "$rounds"); do
  for build in "$a" "$b"; do
    rm -rf "$work/state" "$work/tracer.sock"
    "$build/bin/tracer-sidecar" --socket "$work/tracer.sock" --state-dir "$work/state" 2>"$work/sidecar.log" &
    sidecar=$!
    for _ in $(seq 100); do [ -S "$work/tracer.sock" ] && break; sleep 0.05; done
    cpu_before=$(awk '{print $14 + $15}' "/proc/$sidecar/stat")
    result=$("$build/bin/client_bench" "$work/tracer.sock" "${args[@]}" | tail -1)
    cpu_ticks=$(( $(awk '{print $14 + $15}' "/proc/$sidecar/stat") - cpu_before ))
    offered=$(( args[0] * args[1] ))
    dropped=$(grep -oE '[0-9]+ (of [0-9]+ )?starts dropped' <<<"$result" | cut -d' ' -f1)
    taken=$(( offered - ${dropped:-0} ))
    per_pair=$(( cpu_ticks * 1000000000 / $(getconf CLK_TCK) / (taken > 0 ? taken : 1) / 1000 ))
    echo "round $round $build: $result; sidecar CPU $per_pair us per pair taken in"
    kill "$sidecar"; wait "$sidecar" 2>/dev/null || true
    sidecar=
  done
done
