#!/usr/bin/env bash
# What each of the sidecar's BPF programs costs per run, as the kernel counts
# it (kernel.bpf_stats_enabled: run_cnt and run_time_ns of each program), while
# a workload that is not a task runs beside it: what every thread of the host
# pays for the hooks. Builds side by side, each with a sidecar of its own.
#   tests/bench/program_costs.sh BUILD [BUILD...]
# WORKLOAD: test_workload's arguments (default "pingpong 80000"); TRACKED=1
# runs it as a task (`tracerctl run`), for the tracked path. The kernel's
# own accounting adds two clock reads to each run it times: compare builds,
# not these figures with a run that is not timed. The last line puts all of
# them against the workload's wall time, between two bounds: as timed, and
# less the floor for every run: what a program that does nothing
# (timing_floor, of the first BUILD, attached to the context switch beside
# them) took a run, which is the timing and the call into a program.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD [BUILD...]" >&2; exit 2; }
read -r -a workload <<<"${WORKLOAD:-pingpong 80000}"
floor_tool=$1/bin/timing_floor
[ -x "$floor_tool" ] || { echo "$0: no $floor_tool (build the timing_floor target)" >&2; exit 2; }
work=$(mktemp -d)
sidecar= floor=
stats_before=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [ -n "$sidecar" ] && kill "$sidecar" 2>/dev/null
  [ -n "$floor" ] && kill "$floor" 2>/dev/null
  sysctl -q kernel.bpf_stats_enabled="$stats_before"
  rm -rf "$work"
}
trap cleanup EXIT
how=untracked
[ "${TRACKED:-0}" = 1 ] && how="tracked (tracerctl run)"
echo "== BPF programs while \"${workload[*]}\" runs $how, $(nproc) cores, kernel $(uname -r) =="
for build in "$@"; do
  rm -rf "$work/state" "$work/tracer.sock"
  bpftool prog show --json >"$work/before.json"
  "$build/bin/tracer-sidecar" --socket "$work/tracer.sock" --state-dir "$work/state" 2>"$work/sidecar.log" &
  sidecar=$!
  for _ in $(seq 100); do [ -S "$work/tracer.sock" ] && break; sleep 0.05; done
  "$floor_tool" >"$work/floor.out" &
  floor=$!
  for _ in $(seq 100); do grep -q attached "$work/floor.out" && break; sleep 0.05; done
  sysctl -q kernel.bpf_stats_enabled=1
  started=$(date +%s%N)
  if [ "${TRACKED:-0}" = 1 ]; then
    "$build/bin/tracerctl" --socket "$work/tracer.sock" run -- \
      "$build/bin/test_workload" "${workload[@]}" >/dev/null 2>"$work/run.log" ||
      { cat "$work/run.log" >&2; exit 1; }
  else
    "$build/bin/test_workload" "${workload[@]}" >/dev/null
  fi
  elapsed_ns=$(( $(date +%s%N) - started ))
  echo "$build:"
  # Only this sidecar's programs (and the floor): those loaded since it started.
  bpftool prog show --json | /usr/bin/python3 -c '
import json, sys
before = {prog["id"] for prog in json.load(open(sys.argv[1]))}
total, all_runs, floor = 0, 0, None
for prog in json.load(sys.stdin):
    if prog["id"] in before or not prog.get("run_cnt"):
        continue
    name, runs, ns = prog["name"], prog["run_cnt"], prog["run_time_ns"]
    if name == "timing_floor":
        floor = ns / runs
        continue
    total += ns
    all_runs += runs
    print(f"  {name:<32} {runs:>10} runs {ns / runs:>8.1f} ns a run {ns / 1e6:>8.1f} ms in all")
if floor is None:
    sys.exit("the floor program did not run")
elapsed = int(sys.argv[2])
net = max(0, total - all_runs * floor)
print(f"  floor (a program that does nothing, on the context switch): {floor:.1f} ns a run")
print(f"  all of them: {net / 1e6:.1f}-{total / 1e6:.1f} ms, "
      f"{100 * net / elapsed:.2f}-{100 * total / elapsed:.2f} % of the workload "
      f"{elapsed / 1e9:.3f} s wall time (the lower figure: less the floor for each of "
      f"the {all_runs} runs)")
' "$work/before.json" "$elapsed_ns"
  kill "$floor"; wait "$floor" 2>/dev/null || true
  floor=
  sysctl -q kernel.bpf_stats_enabled="$stats_before"
  kill "$sidecar"; wait "$sidecar" 2>/dev/null || true
  sidecar=
done
