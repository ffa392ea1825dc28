#!/usr/bin/env bash
# Benchmarks, side by side in one run, against a real sidecar. Prints figures;
# asserts nothing (these machines are shared and noisy).
#   tests/bench/run.sh [BUILD_DIR [SECTION...]]
# SECTION: client observer load memory costs policy prefect fuzz (default: all of them).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$repo/build}
shift || true
sections=" ${*:-client observer load memory costs policy prefect fuzz} "
wanted() { [[ $sections == *" $1 "* ]]; }
# The client's cost and the sidecar's intake, against a sidecar of its own.
client_section() {
  work=$(mktemp -d)
  trap 'kill "$sidecar" 2>/dev/null || true; wait "$sidecar" 2>/dev/null || true; rm -rf "$work"' EXIT

  "$build/bin/tracer-sidecar" --socket "$work/tracer.sock" --state-dir "$work/state" 2>"$work/sidecar.log" &
  sidecar=$!
  for _ in $(seq 100); do [ -S "$work/tracer.sock" ] && break; sleep 0.05; done

  pairs=${PAIRS:-20000}

  # One-way starts and finishes: a task's cost on its own thread, paced at
  # RATE pairs/s in all so that the sidecar keeps up; then floods, to see what
  # the sidecar takes in (and what the clients drop past that); then with the
  # sidecar SIGSTOPped.
  rate=${RATE:-2000}
  bench() { "$build/bin/client_bench" "$work/tracer.sock" "$@"; }
  echo "== task start+finish through the client (one sidecar, $(nproc) cores) =="
  "$build/bin/client_bench" --baseline
  for processes in 1 8 50; do
    bench "$processes" $((pairs / 5 / processes)) $((rate / processes))
  done
  bench 1 "$pairs" 0
  bench 8 $((pairs / 8)) 0
  kill -STOP "$sidecar"
  bench 1 $((pairs / 5)) "$rate" --no-confirm
  bench 8 $((pairs / 40)) $((rate / 8)) --no-confirm
  kill -CONT "$sidecar"
  for processes in 1 8; do
    /usr/bin/python3 "$repo/tests/bench/python_bench.py" "$work/tracer.sock" "$processes" \
      $((pairs / 5 / processes)) $((rate / processes))
  done
  echo "sidecar: $(grep -E 'VmHWM|VmRSS' /proc/$sidecar/status | tr -s ' \t' ' ' | paste -sd,)"
  kill "$sidecar"; wait "$sidecar" 2>/dev/null || true
}

export TRACER_CLIENT_LIB="$build/lib/libtracer_client.so"
export PYTHONPATH="$repo/prefect-plugin${PYTHONPATH:+:$PYTHONPATH}"
if wanted client; then client_section; fi

# Snakemake, for its benchmark directive as a peer in the capture comparison:
# pinned, in a venv of its own (PuLP 2.8 removed what Snakemake 7 calls).
snakemake_venv=$build/venv/bench-snakemake
if wanted observer && [ ! -x "$snakemake_venv/bin/snakemake" ]; then
  python3 -m venv "$snakemake_venv"
  "$snakemake_venv/bin/pip" install -q "snakemake==7.32.4" "pulp==2.7.0"
fi

if wanted observer; then
  echo
  SNAKEMAKE="$snakemake_venv/bin/snakemake" TRACER_BUILD_DIR="$build" \
    /usr/bin/python3 "$repo/tests/bench/observer_bench.py"
fi

# Footprint: its own sidecar, idle, then 50 client processes x 20 live tasks for LOAD_SECONDS.
if wanted load; then
  echo
  LOAD_SECONDS=${LOAD_SECONDS:-60} /usr/bin/python3 "$repo/tests/bench/load_bench.py" "$build"
fi

# A live task's memory with nothing else per task (one connection, one thread).
if wanted memory; then
  echo
  /usr/bin/python3 "$repo/tests/bench/task_memory.py" "$build"
fi

# tracerctl costs on histories of 20,000 to 400,000 task runs.
if wanted costs; then
  echo
  /usr/bin/python3 "$repo/tests/bench/cost_bench.py" "$build"
fi

if wanted policy; then
  echo
  "$build/bin/policy_bench"
fi

# The plugin's cost to real Prefect flows (needs scripts/python-envs.sh and scripts/build-wheel.sh).
venv_python=$build/venv/prefect-3.9.1-otel-1.45.2/bin/python
if wanted prefect && [ -x "$venv_python" ]; then
  echo
  TRACER_BUILD_DIR="$build" "$venv_python" "$repo/tests/bench/prefect_bench.py"
fi

# A longer run of each libFuzzer target than the suite's 20 s, from a copy of its
# seeds. A crash is kept in the build directory ($work goes away with this script).
fuzz() {  # NAME SEEDS [flags as in tests/CMakeLists.txt, which says why]
  local name=$1 seeds=$2 corpus
  shift 2
  [ -x "$build/bin/$name" ] || return 0
  echo
  echo "== $name, ${FUZZ_SECONDS:-300} s =="
  corpus=$(mktemp -d)
  cp "$repo/tests/fuzz/$seeds"/* "$corpus"/
  "$build/bin/$name" -max_total_time="${FUZZ_SECONDS:-300}" -timeout=5 -rss_limit_mb=1536 "$@" \
    -artifact_prefix="$build/fuzz/$name-" "$corpus" 2>&1 | grep -E "DONE|ERROR|SUMMARY" | tail -3
  rm -rf "$corpus"
}
if wanted fuzz; then
  fuzz policy_loader_fuzzer corpus
  fuzz rpc_server_fuzzer rpc_corpus -close_fd_mask=2 -detect_leaks=0
fi
