#!/usr/bin/env bash
# Task start+finish cost of two builds, interleaved round by round on one
# machine (so both see the same noise): each round starts each build's own
# sidecar and runs its client_bench against it, and prints the sidecar's CPU
# time (user + system) per pair it took in, the share of the machine that
# sat idle meanwhile, and the sidecar's RSS after the run (and, with
# SETTLE_SECONDS=N, N seconds later: what it gave back once idle).
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
# The machine's idle and total ticks (/proc/stat's cpu line): how much of
# it the sidecar and clients left unused, which a second thread could use.
host_ticks() { awk '/^cpu /{print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit}' /proc/stat; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
settle=${SETTLE_SECONDS:-0}
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
    host_before=$(host_ticks)
    result=$("$build/bin/client_bench" "$work/tracer.sock" "${args[@]}" | tail -1)
    cpu_ticks=$(( $(awk '{print $14 + $15}' "/proc/$sidecar/stat") - cpu_before ))
    read -r idle all <<<"$(host_ticks)"
    read -r idle_before all_before <<<"$host_before"
    idle_share=$(( 100 * (idle - idle_before) / ((all - all_before) > 0 ? all - all_before : 1) ))
    offered=$(( args[0] * args[1] ))
    dropped=$(grep -oE '[0-9]+ (of [0-9]+ )?starts dropped' <<<"$result" | cut -d' ' -f1)
    taken=$(( offered - ${dropped:-0} ))
    per_pair=$(( cpu_ticks * 1000000000 / $(getconf CLK_TCK) / (taken > 0 ? taken : 1) / 1000 ))
    rss="sidecar RSS $(rss_mib "$sidecar") MiB"
    if [ "$settle" -gt 0 ]; then
      sleep "$settle"
      rss="$rss, $(rss_mib "$sidecar") MiB $settle s later"
    fi
    echo "round $round $build: $result; sidecar CPU $per_pair us per pair taken in;" \
         "host idle $idle_share %; $rss"
    kill "$sidecar"; wait "$sidecar" 2>/dev/null || true
    sidecar=
  done
done
