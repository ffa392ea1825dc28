"""Other processes of a flow run (a ProcessPoolTaskRunner's children, a
subprocess of the flow-run process) join the run the flow-run process opened
(FlowRunInfo.join_running_flow_run): their tasks are the run's, in its one
artifact set and its history; letting go ends nothing; other users, other
PID namespaces and latecomers are refused."""

import json
import subprocess
import sys
import uuid

from prefect_tracer.client import SidecarClient
from sidecar import python_env, wait_until
from test_permissions import USER, run_as, shared_sidecar, test_user  # noqa: F401 (fixtures)

DEPLOYMENT_ID = "3f2a9c1e-5b7d-4e21-9a0b-1c2d3e4f5a6b"

# argv: socket, flow run id, task name, then "finish" (let go at exit) or
# "drop" (exit without a word: the connection just closes).
JOINER = """
import json, os, sys
from prefect_tracer.client import SidecarClient
client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
flow = client.open_flow_run(flow_run_id=sys.argv[2], flow_name="the joiner's idea",
                            deployment_id="b04417d2-0c3e-4f6a-8d9e-7a6b5c4d3e2f",
                            join_running_flow_run=True)
with flow.task(task_run_id=sys.argv[3] + "-run", task_name=sys.argv[3]) as task:
    pass
print(json.dumps({"report": task.report, "error": task.error}), flush=True)
if sys.argv[4] == "drop":
    os._exit(0)
flow.finish("failed")  # a joiner's state ends nothing
"""


def connect(sidecar):
    return SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                         connect_wait_ms=5000)


def join(sidecar, flow_run_id, task, how="finish", prefix=()):
    result = subprocess.run([*prefix, sys.executable, "-c", JOINER, str(sidecar.socket),
                             flow_run_id, task, how],
                            capture_output=True, text=True, timeout=60, env=python_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def outbox(sidecar):
    items = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
    return {i["type"]: json.loads(i["body"]) for i in items}, [i["type"] for i in items]


def test_a_joiners_tasks_are_the_runs_own_and_its_exit_ends_nothing(sidecar):
    flow_run_id = str(uuid.uuid4())
    client = connect(sidecar)
    with client.flow_run(flow_run_id=flow_run_id, flow_name="etl",
                         deployment_id=DEPLOYMENT_ID, deployment_name="prod") as flow:
        with flow.task(task_run_id="extract-run", task_name="extract") as extract:
            pass
        # Its finish has reached the sidecar: the joiners forked next are not
        # in its moments after its end (that would leave its totals unknown).
        assert extract.report["state"] == "completed"
        finished = join(sidecar, flow_run_id, "crunch-a", "finish")
        dropped = join(sidecar, flow_run_id, "crunch-b", "drop")
        status = sidecar.status()
        assert (status["live_flow_runs"], status["finished_flow_runs"],
                status["crashed_flow_runs"]) == (1, 0, 0)
        with flow.task(task_run_id="load-run", task_name="load") as load:
            pass  # the run goes on after its joiners left
    assert load.error is None, load.error
    for joiner in (finished, dropped):
        assert joiner["error"] is None, joiner["error"]
        assert joiner["report"]["flow_run_id"] == flow_run_id
        assert joiner["report"]["state"] == "completed"

    status = sidecar.status()
    assert (status["finished_flow_runs"], status["crashed_flow_runs"]) == (1, 0)
    assert (status["finished_tasks"], status["crashed_tasks"]) == (4, 0)
    bodies, kinds = outbox(sidecar)
    assert sorted(kinds) == ["markdown", "table"]  # one artifact set
    rows = json.loads(bodies["table"]["data"])
    assert sorted(r["task"] for r in rows) == ["crunch-a", "crunch-b", "extract", "load"]
    # The opener's FlowRunInfo, not the joiner's: its key, its name, its state.
    assert bodies["table"]["key"] == "tracer-etl-prod-3f2a9c1e-tasks"
    markdown = sidecar.tracerctl("outbox", "--latest").stdout
    assert markdown.startswith("## Tracer: etl (completed,")
    assert "| crunch-a | completed |" in markdown and "| crunch-b | completed |" in markdown
    history = json.loads(sidecar.tracerctl("recommendations", "--json").stdout)
    assert sorted((e["key"], e["task"]) for e in history["recommendations"]) == [
        (f"deployment:{DEPLOYMENT_ID}", task)
        for task in ("(flow run)", "crunch-a", "crunch-b", "extract", "load")]


def test_joining_a_run_that_ended_is_refused(sidecar):
    flow_run_id = str(uuid.uuid4())
    with connect(sidecar).flow_run(flow_run_id=flow_run_id, flow_name="etl") as flow:
        with flow.task(task_run_id="extract-run", task_name="extract"):
            pass
    late = join(sidecar, flow_run_id, "straggler")
    assert late["report"] is None
    assert f"refused: flow run {flow_run_id} already ended (completed)" in late["error"]
    status = sidecar.status()
    assert (status["finished_flow_runs"], status["finished_tasks"]) == (1, 1)
    assert sorted(outbox(sidecar)[1]) == ["markdown", "table"]


def test_a_joiner_without_a_live_run_has_a_run_of_its_own(sidecar):
    # The opener is not observed (no plugin there, or the sidecar restarted since).
    alone = join(sidecar, str(uuid.uuid4()), "crunch")
    assert alone["error"] is None, alone["error"]
    assert alone["report"]["state"] == "completed"
    bodies, _ = outbox(sidecar)
    assert bodies["markdown"]["data"].startswith("## Tracer: the joiner's idea (failed,")


def test_a_second_opener_without_the_flag_still_opens_a_run_of_its_own(sidecar):
    flow_run_id = str(uuid.uuid4())
    first, second = connect(sidecar), connect(sidecar)
    with first.flow_run(flow_run_id=flow_run_id, flow_name="etl"):
        with second.flow_run(flow_run_id=flow_run_id, flow_name="etl"):
            pass
    assert sidecar.status()["finished_flow_runs"] == 2


def test_a_joiner_joins_the_newest_opening_of_a_re_opened_run(sidecar):
    # A client re-opens its run after reconnecting; the older opening ends first.
    flow_run_id = str(uuid.uuid4())
    older, newer = connect(sidecar), connect(sidecar)
    stale = older.open_flow_run(flow_run_id=flow_run_id, flow_name="stale")
    wait_until(lambda: sidecar.status()["live_flow_runs"] == 1, what="the first opening")
    with newer.flow_run(flow_run_id=flow_run_id, flow_name="etl"):
        wait_until(lambda: sidecar.status()["live_flow_runs"] == 2, what="the second opening")
        stale.finish("crashed")
        joined = join(sidecar, flow_run_id, "crunch")
        assert joined["error"] is None, joined["error"]
    assert sidecar.tracerctl("outbox", "--latest").stdout.startswith("## Tracer: etl (completed,")
    assert "| crunch | completed |" in sidecar.tracerctl("outbox", "--latest").stdout
    late = join(sidecar, flow_run_id, "straggler")
    assert "already ended (completed)" in late["error"]


def test_another_pid_namespace_may_not_join(sidecar):
    """Containers of one uid each have a PID namespace: they stay apart."""
    flow_run_id = str(uuid.uuid4())
    with connect(sidecar).flow_run(flow_run_id=flow_run_id, flow_name="etl"):
        wait_until(lambda: sidecar.status()["live_flow_runs"] == 1, what="the opening")
        pod = join(sidecar, flow_run_id, "intruder",
                   prefix=("unshare", "--pid", "--fork", "--mount-proc"))
    assert pod["report"] is None
    assert f"refused: flow run {flow_run_id} was opened by uid 0 in another PID namespace" \
        in pod["error"]
    assert sidecar.status()["finished_tasks"] == 0


def test_another_user_may_not_join(shared_sidecar):
    flow_run_id = str(uuid.uuid4())
    with connect(shared_sidecar).flow_run(flow_run_id=flow_run_id, flow_name="etl"):
        wait_until(lambda: shared_sidecar.status()["live_flow_runs"] == 1, what="the opening")
        result = run_as(USER, sys.executable, "-c", JOINER, str(shared_sidecar.socket),
                        flow_run_id, "intruder", "finish")
    assert result.returncode == 0, result.stderr
    other = json.loads(result.stdout)
    assert other["report"] is None
    assert f"refused: flow run {flow_run_id} was opened by uid 0; the caller (pid " in other["error"]
    assert "may only join flow runs of its own uid and PID namespace" in other["error"]
    status = shared_sidecar.status()
    assert (status["finished_flow_runs"], status["finished_tasks"]) == (1, 0)
