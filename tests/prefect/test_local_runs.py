"""Flow runs without a worker (`python flow.py`, `flow.serve()`) in a real
Prefect with the plugin: observed, and every reason they cannot be is one
warning, never a changed outcome."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from uuid import UUID

import prefect_runs
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.deployments import run_deployment
from sidecar import wait_until

FLOW = Path(__file__).resolve().parent / "flows" / "local.py"
# Runs local.py with opentelemetry-sdk unimportable, as in an install without it.
WITHOUT_SDK = ("import runpy, sys; sys.modules['opentelemetry.sdk'] = None; "
               f"sys.argv = [{str(FLOW)!r}] + sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def run_local(server, sidecar, mode="plain", without_sdk=False, **env):
    command = [sys.executable, "-c", WITHOUT_SDK, mode] if without_sdk else [sys.executable, str(FLOW), mode]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=server.env(
        PREFECT_PLUGINS_ENABLED="true", TRACER_SOCKET=str(sidecar.socket), **env))


def tracer_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() + result.stdout.splitlines()
            if "tracer:" in line]


def observed_tasks(sidecar) -> list[str]:
    return sorted(line.split()[1] for line in sidecar.tracerctl("reports").stdout.splitlines()
                  if line.startswith("task "))


def test_a_local_run_is_observed(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar)
    assert result.stdout.splitlines()[-1] == "Completed", result.stderr
    assert observed_tasks(sidecar) == ["extract", "load"]
    status = sidecar.status()
    assert status["finished_flow_runs"] == 1 and status["crashed_flow_runs"] == 0
    assert tracer_lines(result) == []


def test_a_provider_the_user_set_before_prefect_gets_the_processor(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar, "provider-before")
    assert result.stdout.splitlines()[-1] == "Completed", result.stderr
    assert observed_tasks(sidecar) == ["extract", "load"]


def test_the_user_can_still_set_a_provider_after_importing_prefect(prefect_server, sidecar):
    """The plugin sets no global provider of its own at import: the user's
    set_tracer_provider() is not refused (local.py asserts it)."""
    result = run_local(prefect_server, sidecar, "provider-after")
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "Completed", result.stderr
    assert "Overriding of current TracerProvider is not allowed" not in result.stderr
    # Its tasks are not observed, and the plugin says so once, at exit.
    lines = tracer_lines(result)
    assert len(lines) == 1 and "has no Tracer processor" in lines[0], lines
    assert observed_tasks(sidecar) == []


def traced_runs(flow_run_id: str) -> list[str]:
    """The flow run and those of its task runs that carry a trace context label
    in Prefect's API, once both task runs are recorded."""
    def read():
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(flow_run_id))
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        return [run, *tasks] if len(tasks) == 2 else None

    runs = wait_until(read, what="the task runs recorded")
    return sorted(("flow" if i == 0 else "task") for i, run in enumerate(runs)
                  if "__OTEL_TRACEPARENT" in (run.labels or {}))


def test_the_plugins_own_provider_adds_no_trace_context_to_runs(prefect_server, sidecar):
    """With no provider of the user's, Prefect's spans are the plugin's and
    carry no trace context, as without the plugin: no `__OTEL_TRACEPARENT`
    label on the flow run (one more API call) or its task runs (in every state
    event). A provider of the user's keeps Prefect's propagation."""
    plain = run_local(prefect_server, sidecar)
    assert plain.stdout.splitlines()[-1] == "Completed", plain.stderr
    assert traced_runs(plain.stdout.splitlines()[-2]) == []
    assert observed_tasks(sidecar) == ["extract", "load"]
    users = run_local(prefect_server, sidecar, "provider-before")
    assert users.stdout.splitlines()[-1] == "Completed", users.stderr
    assert traced_runs(users.stdout.splitlines()[-2]) == ["flow", "task", "task"]


def test_safe_mode_loads_the_plugin_and_does_nothing(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar, PREFECT_PLUGINS_SAFE_MODE="true")
    assert result.stdout.splitlines()[-1] == "Completed", result.stderr
    assert sidecar.status()["finished_flow_runs"] == 0 and observed_tasks(sidecar) == []


def _one_warning_and_unchanged(result, sidecar, words):
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "Completed", result.stderr
    lines = tracer_lines(result)
    assert len(lines) == 1 and words in lines[0], lines
    assert sidecar.status()["crashed_flow_runs"] == 0


def test_without_the_sdk_one_warning(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar, without_sdk=True)
    _one_warning_and_unchanged(result, sidecar, "opentelemetry-sdk is not importable")


def test_with_the_sdk_disabled_one_warning(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar, OTEL_SDK_DISABLED="true")
    _one_warning_and_unchanged(result, sidecar, "OTEL_SDK_DISABLED=true")


def test_with_orchestration_telemetry_off_one_warning(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar,
                       PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY="false")
    _one_warning_and_unchanged(result, sidecar, "ORCHESTRATION_TELEMETRY is off")


def test_a_bad_declared_value_is_one_warning_and_the_run_is_observed(prefect_server, sidecar):
    result = run_local(prefect_server, sidecar, TRACER_MEMORY="1ki", TRACER_CPU="2")
    _one_warning_and_unchanged(result, sidecar, "TRACER_MEMORY='1ki'")
    assert observed_tasks(sidecar) == ["extract", "load"]
    assert '"cpu_cores":2' in sidecar.tracerctl("reports", "--json").stdout.replace(" ", "")


def test_an_absent_sidecar_is_one_warning(prefect_server, sidecar):
    sidecar.stop()
    result = run_local(prefect_server, sidecar)
    assert result.stdout.splitlines()[-1] == "Completed", result.stderr
    lines = tracer_lines(result)
    assert len(lines) == 1 and "sidecar unavailable" in lines[0], lines


def test_flow_serve_runs_are_observed(prefect_server, sidecar):
    serve = subprocess.Popen([sys.executable, str(FLOW), "serve"], env=prefect_server.env(
        PREFECT_PLUGINS_ENABLED="true", TRACER_SOCKET=str(sidecar.socket),
        PREFECT_RUNNER_POLL_FREQUENCY="1"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run = wait_until(lambda: _try_run_deployment("local-etl/served"), timeout=60, interval=0.5,
                         what="the served deployment to take a run")
        prefect_runs.wait_final([run.id], timeout=120)
        wait_until(lambda: sidecar.status()["finished_flow_runs"] == 1, timeout=30,
                   what="the served run to finish in the sidecar")
        assert observed_tasks(sidecar) == ["extract", "load"]
    finally:
        serve.terminate()
        serve.wait(30)


def test_a_supervised_flow_run_is_announced_once(prefect_server, sidecar):
    """Docker, Kubernetes and ECS workers run `prefect flow-run execute`,
    which supervises the engine: both load the plugin, one announces."""
    sys.path.insert(0, str(FLOW.parent))
    import corpus

    prefect_runs.create_process_pool("supervised")  # no worker: the run waits for us
    deployment = prefect_runs.deploy(corpus.sync_tasks, "supervised", "supervised")
    run = run_deployment(str(deployment), timeout=0)
    result = subprocess.run([str(Path(sys.executable).parent / "prefect"), "flow-run", "execute",
                             str(run.id)], capture_output=True, text=True, timeout=180,
                            cwd=FLOW.parent, env=prefect_server.env(
                                PREFECT_PLUGINS_ENABLED="true", TRACER_SOCKET=str(sidecar.socket)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert prefect_runs.outcome(run.id).state == ("COMPLETED", "Completed")
    status = wait_until(lambda: (s := sidecar.status())["finished_flow_runs"] and s, timeout=30,
                        what="the flow run to finish in the sidecar")
    assert status["finished_flow_runs"] == 1 and status["crashed_flow_runs"] == 0, sidecar.log()[-4000:]
    assert observed_tasks(sidecar) == ["crunch"] * 4


def _try_run_deployment(name: str):
    try:
        return run_deployment(name, timeout=0)
    except Exception:  # noqa: BLE001 - not registered yet
        return None
