#!/usr/bin/env bash
# The main job, on a real local Prefect: installs and builds everything,
# starts tracer-sidecar, a Prefect server (SQLite in build/demo/prefect-home,
# http://127.0.0.1:${DEMO_PORT:-4200}), a process work pool and a worker with
# the plugin, deploys examples/prefect/flow.py, runs it ${DEMO_RUNS:-3} times
# (enough history for a recommendation), prints the last flow run's URL in the
# UI and its markdown artifact, and stops everything it started.
#
#   scripts/demo.sh          run, print, stop
#   scripts/demo.sh --keep   leave the server, worker and sidecar up for browsing
#
# With PREFECT_API_URL set it uses that server instead of starting one. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the sidecar loads BPF programs" >&2; exit 1; }
keep=false
for arg in "$@"; do
  case $arg in
    --keep) keep=true ;;
    *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
  esac
done

venv_name=prefect-3.9.1-otel-1.45.2
scripts/install-deps.sh
scripts/build.sh
scripts/python-envs.sh "$venv_name"
scripts/build-wheel.sh >/dev/null
venv=$(pwd)/build/venv/$venv_name
demo=$(pwd)/build/demo
mkdir -p "$demo"  # state and the server's database stay: each demo adds runs to the history
export PATH=$venv/bin:$PATH PREFECT_HOME=$demo/prefect-home PREFECT_SERVER_ANALYTICS_ENABLED=false
export TRACER_SOCKET=$demo/tracer.sock TRACER_EXAMPLE_DIR=$(pwd)/examples/prefect

pids=()
stop_all() {  # the newest first (the worker before the server it talks to); SIGKILL after 15 s
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || continue
    for _ in $(seq 75); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.2; done
    kill -9 "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT
wait_for() {  # what, seconds, command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "demo: $what did not come up; logs in $demo" >&2
  exit 1
}

if [ -z "${PREFECT_API_URL:-}" ]; then
  export PREFECT_API_URL=http://127.0.0.1:${DEMO_PORT:-4200}/api
  setsid prefect server start --host 127.0.0.1 --port "${DEMO_PORT:-4200}" >"$demo/server.log" 2>&1 &
  pids+=($!)
  wait_for "the Prefect server" 120 curl -sf "$PREFECT_API_URL/health"
fi
ui=${PREFECT_API_URL%/api}

build/bin/tracer-sidecar --socket "$TRACER_SOCKET" --state-dir "$demo/state" --policies policies \
  2>"$demo/sidecar.log" &
pids+=($!)
wait_for "tracer-sidecar" 20 test -S "$TRACER_SOCKET"

prefect --no-prompt work-pool create tracer-process-pool --type process --overwrite >/dev/null
PREFECT_PLUGINS_ENABLED=true PREFECT_WORKER_QUERY_SECONDS=2 \
  setsid prefect worker start --pool tracer-process-pool >"$demo/worker.log" 2>&1 &
pids+=($!)
(cd examples/prefect && prefect --no-prompt deploy --all >"$demo/deploy.log" 2>&1)

for run in $(seq "${DEMO_RUNS:-3}"); do
  echo "flow run $run of ${DEMO_RUNS:-3}: tracer-example/tracer-example"
  prefect deployment run tracer-example/tracer-example --watch >"$demo/run-$run.log" 2>&1 ||
    { echo "demo: the flow run failed (its log: $demo/run-$run.log)" >&2; exit 1; }
done

# The last flow run's markdown artifact, read back from Prefect.
last_run=$(grep -oE 'UUID: [0-9a-f-]{36}' "$demo/run-${DEMO_RUNS:-3}.log" | head -1 | cut -c7-)
python - "$ui" "$last_run" <<'EOF'
import sys, time
from uuid import UUID
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

with get_client(sync_client=True) as client:
    run = client.read_flow_run(UUID(sys.argv[2]))
    for _ in range(100):  # the sidecar delivers right after the run ends
        found = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))) if (a.key or "").startswith("tracer-")]
        if len(found) == 2:
            break
        time.sleep(0.2)
    markdown = [a for a in found if a.type == "markdown"]
    print(f"\nflow run {run.name}: {run.state.name}")
    print(f"  in Prefect's UI: {sys.argv[1]}/runs/flow-run/{run.id}?tab=Artifacts")
    if not markdown:
        sys.exit("demo: the sidecar posted no artifact for the last run (see build/demo/sidecar.log)")
    print(f"  artifact {markdown[0].key} (every run adds a version):\n")
    print(markdown[0].data)
EOF
echo
build/bin/tracerctl status
echo "logs: $demo/{server,worker,sidecar}.log"
if $keep; then
  trap - EXIT
  echo "left running (--keep): Prefect UI $ui, sidecar socket $TRACER_SOCKET; stop with: kill ${pids[*]}"
fi
