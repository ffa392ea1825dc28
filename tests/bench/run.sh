#!/usr/bin/env bash
# Benchmarks, side by side in one run, against a real sidecar. Prints figures;
# asserts nothing (these machines are shared and noisy).
#   tests/bench/run.sh [BUILD_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
work=$(mktemp -d)
trap 'kill "$sidecar" 2>/dev/null || true; wait "$sidecar" 2>/dev/null || true; rm -rf "$work"' EXIT

"$build/bin/tracer-sidecar" --socket "$work/tracer.sock" --state-dir "$work/state" 2>"$work/sidecar.log" &
sidecar=$!
for _ in $(seq 100); do [ -S "$work/tracer.sock" ] && break; sleep 0.05; done

export TRACER_CLIENT_LIB="$build/lib/libtracer_client.so"
export PYTHONPATH="$repo/prefect-plugin${PYTHONPATH:+:$PYTHONPATH}"
pairs=${PAIRS:-20000}

echo "== task start+finish through the client (one sidecar, $(nproc) cores) =="
"$build/bin/client_bench" --baseline
"$build/bin/client_bench" "$work/tracer.sock" 1 "$pairs"
"$build/bin/client_bench" "$work/tracer.sock" 8 $((pairs / 8))
/usr/bin/python3 "$repo/tests/bench/python_bench.py" "$work/tracer.sock" 1 "$pairs"
/usr/bin/python3 "$repo/tests/bench/python_bench.py" "$work/tracer.sock" 8 $((pairs / 8))
echo "sidecar: $(grep -E 'VmHWM|VmRSS' /proc/$sidecar/status | tr -s ' \t' ' ' | paste -sd,)"
kill "$sidecar"; wait "$sidecar" 2>/dev/null || true

echo
TRACER_BUILD_DIR="$build" /usr/bin/python3 "$repo/tests/bench/observer_bench.py"

# Footprint: its own sidecar, idle, then 50 client processes x 20 live tasks for LOAD_SECONDS.
echo
LOAD_SECONDS=${LOAD_SECONDS:-60} /usr/bin/python3 "$repo/tests/bench/load_bench.py" "$build"

echo
"$build/bin/policy_bench"

if [ -x "$build/bin/policy_loader_fuzzer" ]; then
  fuzz_seconds=${FUZZ_SECONDS:-300}
  echo
  echo "== policy loader fuzzing, ${fuzz_seconds} s =="
  corpus=$(mktemp -d)
  cp "$repo"/tests/fuzz/corpus/* "$corpus"/
  "$build/bin/policy_loader_fuzzer" -max_total_time="$fuzz_seconds" -timeout=5 -rss_limit_mb=1536 \
    -artifact_prefix="$work/" "$corpus" 2>&1 | grep -E "DONE|ERROR|SUMMARY" | tail -3
  rm -rf "$corpus"
fi

if [ -x "$build/bin/rpc_server_fuzzer" ]; then
  fuzz_seconds=${FUZZ_SECONDS:-300}
  echo
  echo "== RPC server fuzzing, ${fuzz_seconds} s =="
  corpus=$(mktemp -d)
  cp "$repo"/tests/fuzz/rpc_corpus/* "$corpus"/
  # Flags as in tests/CMakeLists.txt (fuzz_rpc_server), which says why. A crash is kept
  # in the build directory: $work goes away with this script.
  "$build/bin/rpc_server_fuzzer" -max_total_time="$fuzz_seconds" -timeout=5 -rss_limit_mb=1536 \
    -close_fd_mask=2 -detect_leaks=0 -artifact_prefix="$build/fuzz/rpc_server-" "$corpus" 2>&1 |
    grep -E "DONE|ERROR|SUMMARY" | tail -3
  rm -rf "$corpus"
fi
