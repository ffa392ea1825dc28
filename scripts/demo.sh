#!/usr/bin/env bash
# The main job: builds Tracer, starts tracer-sidecar, and runs a demo workload
# (examples/demo.py) through the Python client, the way the Prefect plugin
# drives it. Prints each task's report and the sidecar's status. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the sidecar loads BPF programs" >&2; exit 1; }
scripts/install-deps.sh
scripts/build.sh

demo=$(pwd)/build/demo
mkdir -p "$demo"  # the state (history) stays: run the demo three times for recommendations
export TRACER_SOCKET=$demo/tracer.sock
build/bin/tracer-sidecar --socket "$TRACER_SOCKET" --state-dir "$demo/state" --policies policies \
  2>"$demo/sidecar.log" &
sidecar=$!
trap 'kill "$sidecar" 2>/dev/null; wait "$sidecar" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$TRACER_SOCKET" ] && break; sleep 0.05; done

PYTHONPATH=$(pwd)/prefect-plugin TRACER_CLIENT_LIB=$(pwd)/build/lib/libtracer_client.so \
  /usr/bin/python3 examples/demo.py
echo
build/bin/tracerctl status
echo
build/bin/tracerctl outbox
build/bin/tracerctl outbox --latest > "$demo/latest-artifact.md"
echo
if [ -n "${PREFECT_API_URL:-}" ]; then
  echo "artifacts: posted to $PREFECT_API_URL (Artifacts tab of the flow run)"
else
  echo "artifacts: kept locally (no PREFECT_API_URL): tracerctl outbox; the newest markdown"
  echo "           artifact is in $demo/latest-artifact.md"
fi
echo "sidecar log: $demo/sidecar.log"
