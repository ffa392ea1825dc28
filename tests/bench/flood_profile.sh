#!/usr/bin/env bash
# Where the sidecar's CPU goes while it takes in a flood of task starts and
# finishes: perf records its calls (DWARF unwinding) while client_bench
# floods it, and the share of the sidecar's samples under each stage is
# printed (a stage's own and its callees'), then the sidecar's system calls
# per pair it took in (perf stat: all of them, and those to bpf()).
#   tests/bench/flood_profile.sh BUILD [PROCESSES PAIRS]   (default: 8 8000)
# Needs perf (Debian: linux-perf); a benchmark, not run by the suite.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD [PROCESSES PAIRS]" >&2; exit 2; }
build=$1 processes=${2:-8} pairs=${3:-8000}
command -v perf >/dev/null || { echo "$0: needs perf (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
sidecar= recorder= counter=
trap '[ -n "$recorder" ] && kill -INT "$recorder" 2>/dev/null; [ -n "$counter" ] && kill -INT "$counter" 2>/dev/null; [ -n "$sidecar" ] && kill "$sidecar" 2>/dev/null; rm -rf "$work"' EXIT
"$build/bin/tracer-sidecar" --socket "$work/tracer.sock" --state-dir "$work/state" 2>"$work/sidecar.log" &
sidecar=$!
for _ in $(seq 100); do [ -S "$work/tracer.sock" ] && break; sleep 0.05; done
perf record -F 4000 --call-graph dwarf,16384 -p "$sidecar" -o "$work/perf.data" 2>/dev/null &
recorder=$!
perf stat -x, -e raw_syscalls:sys_enter,syscalls:sys_enter_bpf -o "$work/calls.csv" -p "$sidecar" &
counter=$!
sleep 1
echo "== $processes processes x $pairs pairs, flood, $(nproc) cores, kernel $(uname -r) =="
result=$("$build/bin/client_bench" "$work/tracer.sock" "$processes" "$pairs" 0 | tail -1)
echo "$result"
sleep 1  # the flow runs' artifacts, built after their finish
kill -INT "$recorder" "$counter"; wait "$recorder" "$counter" 2>/dev/null || true
recorder= counter=
dropped=$(sed -n 's/.* \([0-9]*\) starts dropped.*/\1/p' <<<"$result")
awk -F, -v taken=$((processes * pairs - ${dropped:-0})) '
  $3 == "raw_syscalls:sys_enter" { all = $1 }
  $3 == "syscalls:sys_enter_bpf" { bpf = $1 }
  END { printf "  system calls per pair taken in (%d pairs): %.1f, of which bpf() %.1f\n", taken, all / taken, bpf / taken }
' "$work/calls.csv"
perf report -i "$work/perf.data" --children --sort symbol -g none --stdio 2>/dev/null |
  awk -f "$(dirname "$0")/sidecar_stages.awk"
