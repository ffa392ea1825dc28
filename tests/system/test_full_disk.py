"""The state directory's disk fills up mid-run: the sidecar keeps serving,
flow runs that finish while it is full keep their history rows and artifacts
in memory (counted on /metrics and in tracerctl status, one log line when
writing starts failing and one when it works again), and once there is room
everything is written: nothing the disk could take is lost."""

import errno
import json
import sqlite3
import subprocess
import time
from contextlib import contextmanager

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar, wait_until
from test_metrics import free_port, scrape, value


def fill(directory):
    """Writes a filler file until the file system has no byte left."""
    filler = directory / "filler"
    with open(filler, "ab", buffering=0) as out:
        size = 1 << 16
        while size > 0:
            try:
                out.write(b"x" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                size //= 2
    return filler


def flow_run(client, name, tasks=3):
    with client.flow_run(flow_run_id=name, flow_name="full-disk") as flow:
        for n in range(tasks):
            with flow.task(task_run_id=f"{name}-t{n}", task_name=f"step-{n}"):
                sum(range(10000))


@contextmanager
def on_a_small_disk(sidecar):
    """The sidecar started with its state directory on a 4 MiB tmpfs of its
    own; stopped and unmounted at the end."""
    sidecar.state_dir.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs",
                    str(sidecar.state_dir)], check=True)
    try:
        sidecar.start()
        yield sidecar
    finally:
        if sidecar.alive():
            sidecar.stop()
        subprocess.run(["umount", "-l", str(sidecar.state_dir)], check=False)


def test_a_full_state_disk_loses_nothing_it_can_take_once_there_is_room(tmp_path):
    port = free_port()
    with on_a_small_disk(Sidecar(tmp_path, "--metrics-listen", f"127.0.0.1:{port}")) as sidecar:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=5000,
                               connect_wait_ms=2000)
        flow_run(client, "before")
        artifacts_per_run = len(json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"])
        assert artifacts_per_run == 2

        filler = fill(sidecar.state_dir)
        for n in range(3):
            flow_run(client, f"full-{n}")
        time.sleep(2.5)  # the once-a-second retries fail too
        text = scrape(port)
        assert value(text, "tracer_history_write_failures_total") >= 2
        assert value(text, "tracer_history_runs_held_in_memory") > 0
        assert value(text, "tracer_outbox_write_failures_total") >= 2
        assert value(text, "tracer_artifacts_held_in_memory") == 3 * artifacts_per_run
        status = sidecar.status()
        assert status["history_write_failures"] >= 2 and status["history_runs_held"] > 0, status
        assert status["outbox_write_failures"] >= 2, status
        assert status["artifacts_held"] == 3 * artifacts_per_run, status
        assert "artifacts held in memory" in sidecar.tracerctl("status").stdout

        filler.unlink()
        wait_until(lambda: sidecar.status()["artifacts_held"] == 0, what="held artifacts stored")
        wait_until(lambda: sidecar.status()["history_runs_held"] == 0, what="held runs written")
        flow_run(client, "after")  # and writing goes on
        items = json.loads(sidecar.tracerctl("outbox", "--json").stdout)["artifacts"]
        assert len(items) == 5 * artifacts_per_run
        assert {item["flow_run_id"] for item in items} == {"before", "full-0", "full-1",
                                                           "full-2", "after"}
        status = sidecar.status()
        assert status["artifacts_dropped"] == 0 and status["history_runs_dropped"] == 0, status
        assert sidecar.alive()
        assert sidecar.stop() == 0, sidecar.log()

        with sqlite3.connect(sidecar.state_dir / "history.db") as db:
            flows = [row[0] for row in db.execute("SELECT flow_run_id FROM flow_runs")]
            per_run = db.execute("SELECT COUNT(*) FROM task_runs").fetchone()[0] / 5
        assert sorted(flows) == ["after", "before", "full-0", "full-1", "full-2"]
        assert per_run == 4  # three tasks and the flow run's footprint, each run

        log = sidecar.log()
        for line, times in (("cannot write the history (", 1), ("history written again", 1),
                            ("cannot store artifacts in the outbox (", 1),
                            ("outbox stores artifacts again", 1)):
            assert log.count(line) == times, (line, log)
        assert "disk is full" in log


def test_a_stop_while_the_disk_is_full_says_what_it_loses(tmp_path):
    with on_a_small_disk(Sidecar(tmp_path)) as sidecar:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=5000,
                               connect_wait_ms=2000)
        flow_run(client, "before")
        fill(sidecar.state_dir)
        flow_run(client, "full")
        wait_until(lambda: sidecar.status()["artifacts_held"] == 2, what="the run's artifacts held")
        held_runs = sidecar.status()["history_runs_held"]
        client.close()
        assert sidecar.stop() == 0, sidecar.log()
        # Three tasks, the flow run's footprint and the flow run itself; its two artifacts.
        assert held_runs == 5
        log = sidecar.log()
        assert (f"{held_runs} finished runs held in memory are lost: the history could not "
                "write them before the sidecar stopped") in log, log
        assert ("2 artifacts held in memory are lost: the outbox could not store them before "
                "the sidecar stopped") in log, log
