"""Forced onto the /proc collector: the same report, with what it cannot know
marked unknown (null), never zero."""

import subprocess
import threading
import time

import pytest
from prefect_tracer.client import SidecarClient
from nested_tasks import assert_cpu_within_truths, outer_calling_inner
from sidecar import Sidecar, WORKLOAD, observe_command, thread_task_in_a_fresh_process

def test_forced_procfs_collector_reports_what_it_can(tmp_path):
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        status = sidecar.status()
        assert status["collector"] == "procfs"
        assert "forced with --collector procfs" in status["collector_note"]
        assert "using /proc" in sidecar.log()

        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="procfs", flow_name="procfs") as flow:
            with flow.task(task_run_id="spin") as task:
                until = time.thread_time() + 0.3
                while time.thread_time() < until:
                    pass
        report = task.report
        assert report["collector"] == "procfs"
        cpu = report["cpu"]["user_ns"] + report["cpu"]["system_ns"]
        assert 0.28e9 <= cpu <= 0.4e9
        for group, field in [("net", "tx_bytes"), ("net", "rx_bytes"), ("proc", "spawned"),
                             ("sched", "blocked_io_ns"), ("memory", "oom_kills")]:
            assert report[group][field] is None, (group, field)
            assert f"{group}.{field}" in report["unknown"]
        assert report["proc"]["top"] is None
        assert report["memory"]["peak_rss_bytes"] > 0
    finally:
        assert sidecar.stop() == 0


def test_a_task_called_inside_a_task_counts_its_thread_for_itself(tmp_path):
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="procfs-nested", flow_name="procfs") as flow:
            outer, inner, truth, high = outer_calling_inner(flow)
        assert_cpu_within_truths({"inner": inner, "outer": outer}, truth, high)
        assert outer["thread"]["nested_tasks"] == 1
    finally:
        assert sidecar.stop() == 0


def test_a_task_that_owns_its_process_has_its_exits_counted_or_labelled(tmp_path):
    """taskstats: what a task's processes did, against their rusage. The task
    owns its process (`tracerctl run`), which its caller reaps: I/O and memory
    come exact from the exit records; CPU, which each record can be short of
    by a slice and an unmapping, is unknown where that could be over 2 %."""
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        assert "exited children counted from taskstats" in sidecar.status()["collector_note"]
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        with client.flow_run(flow_run_id="children", flow_name="children") as flow:
            children, _, _ = observe_command(flow, [str(WORKLOAD), "children", "20", "20"])
            touched, touch_usage, _ = observe_command(flow, [str(WORKLOAD), "touch", "64"])
            target = tmp_path / "written"
            written, _, _ = observe_command(flow, [str(WORKLOAD), "write", "16", str(target)])
        client.close()
        assert children["cpu"]["user_ns"] is None
        assert any("21 exited threads" in why for why in children["unknown_why"]), \
            children["unknown_why"]
        assert abs(touched["memory"]["peak_rss_bytes"] - touch_usage.maxrss_bytes) \
            <= 0.03 * touch_usage.maxrss_bytes
        assert abs(written["io"]["write_bytes"] - (16 << 20)) <= 0.01 * (16 << 20)
        assert children["proc"]["spawned"] is None  # it cannot tell processes from threads
    finally:
        assert sidecar.stop() == 0


def test_a_child_of_a_process_running_two_tasks_leaves_both_unknown(tmp_path):
    """Exit records name the parent process, not the thread: a child of a
    process with two live tasks could be either's."""
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        reports = {}
        both_started = threading.Barrier(2)

        def task(name, work):
            with flow.task(task_run_id=name, task_name=name) as live:
                both_started.wait()
                work()
                both_started.wait()
            reports[name] = live.report

        with client.flow_run(flow_run_id="shared", flow_name="shared") as flow:
            workers = [
                threading.Thread(target=task, args=(
                    "spawner", lambda: subprocess.run([str(WORKLOAD), "children", "2", "5"],
                                                      check=True))),
                threading.Thread(target=task, args=("idle", lambda: time.sleep(0.2))),
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
        client.close()
        for name in ("spawner", "idle"):
            report = reports[name]
            assert report["cpu"]["user_ns"] is None, name
            assert "io.write_bytes" in report["unknown"], name
            assert any("other tasks of that process" in why for why in report["unknown_why"]), \
                (name, report["unknown_why"])
    finally:
        assert sidecar.stop() == 0


def spawn_on_a_thread(sidecar, commands=5, child_ms=10):
    """One task on a thread that runs `commands` commands of two children of
    `child_ms` each; returns (report, the kernel's account of its CPU without
    and with its start and finish calls)."""
    return thread_task_in_a_fresh_process(
        sidecar.socket, [str(WORKLOAD), "children", "2", str(child_ms)], commands)


def assert_within_a_tick(report, low, high):
    """What the task's process reaped is the children's CPU to a clock tick
    (10 ms) for each of user and system time; the thread's own CPU is between
    the kernel's account without and with the task's start and finish calls."""
    cpu = report["cpu"]["user_ns"] + report["cpu"]["system_ns"]
    bound = 20e6 + 0.01 * high
    assert low - bound <= cpu <= high + bound, (cpu, low, high, report["unknown_why"])


# The kernel's BTF hidden in a mount namespace of the sidecar's own is what
# libbpf and the sidecar see on a kernel built without CONFIG_DEBUG_INFO_BTF;
# root without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN keeps CAP_NET_ADMIN, so
# taskstats still counts children.
HIDE_BTF = ("unshare", "--mount", "sh", "-c",
            'mount --bind /dev/null /sys/kernel/btf/vmlinux && exec "$0" "$@"')
NO_CAP_BPF = ("setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", "--")


@pytest.mark.parametrize("wrapper, why", [
    (HIDE_BTF, "the kernel's BTF cannot be read"),
    (NO_CAP_BPF, "loading BPF programs failed: Operation not permitted"),
], ids=["no BTF", "no CAP_BPF"])
def test_without_bpf_the_fallback_counts_children_and_says_why_in_one_line(tmp_path, wrapper,
                                                                           why):
    sidecar = Sidecar(tmp_path, wrapper=wrapper).start()
    try:
        status = sidecar.status()
        assert status["collector"] == "procfs"
        assert why in status["collector_note"], status["collector_note"]
        assert "exited children counted from taskstats" in status["collector_note"]
        warnings = [line for line in sidecar.log().splitlines() if "kernel observer" in line]
        assert len(warnings) == 1 and why in warnings[0], warnings
        report, low, high = spawn_on_a_thread(sidecar)
        assert_within_a_tick(report, low, high)
        assert report["net"]["tx_bytes"] is None
    finally:
        assert sidecar.stop() == 0


def test_without_bpf_or_taskstats_everything_a_task_starts_is_unknown(tmp_path):
    no_privileges = ("setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin,-net_admin", "--")
    sidecar = Sidecar(tmp_path, wrapper=no_privileges).start()
    try:
        status = sidecar.status()
        assert status["collector"] == "procfs"
        assert "taskstats: the kernel refused" in status["collector_note"], \
            status["collector_note"]
        assert sum("warning taskstats:" in line for line in sidecar.log().splitlines()) == 1
        report, _, _ = spawn_on_a_thread(sidecar)
        for field in ("cpu.user_ns", "io.write_bytes", "memory.peak_rss_bytes",
                      "sched.runqueue_wait_ns"):
            assert field in report["unknown"], field
        assert report["cpu"]["user_ns"] is None
        assert any("cannot be counted" in why for why in report["unknown_why"])
    finally:
        assert sidecar.stop() == 0


def test_a_thread_tasks_children_come_to_their_rusage_within_a_tick(tmp_path):
    """A task on a thread of a live process (Prefect's usual case): its
    children's exit records miss each one's last slice, what the process has
    reaped has it; the report is within a clock tick (for each of user and
    system time) of the kernel's own account (the thread's CPU clock and
    RUSAGE_CHILDREN)."""
    sidecar = Sidecar(tmp_path, "--collector", "procfs").start()
    try:
        assert_within_a_tick(*spawn_on_a_thread(sidecar, commands=20, child_ms=5))
    finally:
        assert sidecar.stop() == 0
