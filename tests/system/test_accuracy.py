"""The observer against the kernel's own accounting: wait4's rusage, or bytes
the workload itself moved. Tolerances are the issue's."""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from prefect_tracer.client import SidecarClient
from nested_tasks import assert_cpu_within_truths, outer_calling_inner
from thread_memory import allocating_and_sleeping
from sidecar import WORKLOAD, Sidecar, observe_command, python_env

NS = 1_000_000_000


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory):
    # Without marked starts, which a host with fentry would load: the late
    # registrations below test what the sidecar does without them (the kernel
    # matrix tests marked starts, on kernels that all take them).
    process = Sidecar(tmp_path_factory.mktemp("accuracy"), "--without-start-marks").start()
    yield process
    assert process.stop() == 0


def flow_run(sidecar, request, start_wait_ms):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=start_wait_ms,
                           finish_wait_ms=5000, connect_wait_ms=5000)
    with client.flow_run(flow_run_id=f"accuracy-{request.node.name}",
                         flow_name="accuracy") as scope:
        yield scope
    client.close()


@pytest.fixture
def flow(sidecar, request):
    yield from flow_run(sidecar, request, start_wait_ms=5000)


def cpu_ns(report):
    return report["cpu"]["user_ns"] + report["cpu"]["system_ns"]


def assert_within(measured, truth, tolerance, what):
    error = abs(measured - truth) / truth
    print(f"{what}: measured {measured}, truth {truth}, error {error:.2%}")
    assert error <= tolerance, f"{what}: {measured} vs {truth} ({error:.2%} > {tolerance:.0%})"


def test_cpu_of_busy_threads_and_children(flow):
    script = f"{WORKLOAD} threads 3 300 & {WORKLOAD} children 50 20; wait"
    report, usage, status = observe_command(flow, ["/bin/sh", "-c", script], "cpu")
    assert status == 0
    assert_within(cpu_ns(report), usage.cpu_ns, 0.02, "cpu.user_ns + cpu.system_ns")
    assert report["proc"]["spawned"] == 52  # two from sh, fifty from `children`
    assert report["events"]["lost"] == 0


def test_a_thousand_short_lived_children(flow):
    report, usage, status = observe_command(
        flow, [str(WORKLOAD), "spawn", "1000", "1", "5"], "spawn")
    assert status == 0
    assert report["proc"]["spawned"] == 1000
    assert report["proc"]["execs"] == 1001  # the workload's own exec, then one per child
    assert report["proc"]["short_lived"] == 1000
    assert_within(cpu_ns(report), usage.cpu_ns, 0.02, "cpu of 1000 short children")
    top = {entry["comm"]: entry for entry in report["proc"]["top"]}
    assert top["test_workload"]["count"] == 1001
    assert report["events"]["lost"] == 0


def test_peak_rss_of_a_child_touching_512_mib(flow):
    report, usage, status = observe_command(flow, [str(WORKLOAD), "touch", "512"], "touch")
    assert status == 0
    assert_within(report["memory"]["peak_rss_bytes"], usage.maxrss_bytes, 0.03,
                  "memory.peak_rss_bytes")
    assert report["memory"]["shared_process"] is False
    assert report["events"]["lost"] == 0


def test_storage_bytes_written_with_fsync(flow, tmp_path_factory):
    # /var/tmp is on the disk here (pytest's tmp may be anywhere).
    target = Path("/var/tmp") / f"tracer-write-{os.getpid()}"
    try:
        report, _, status = observe_command(flow, [str(WORKLOAD), "write", "256", str(target)],
                                            "write")
    finally:
        target.unlink(missing_ok=True)
    assert status == 0
    assert_within(report["io"]["write_bytes"], 256 << 20, 0.02, "io.write_bytes")
    assert_within(report["io"]["wchar"], 256 << 20, 0.02, "io.wchar")
    assert report["events"]["lost"] == 0


def test_loopback_tcp_bytes(flow):
    report, _, status = observe_command(flow, [str(WORKLOAD), "tcp", "100"], "tcp")
    assert status == 0
    assert_within(report["net"]["tx_bytes"], 100_000_000, 0.01, "net.tx_bytes")
    assert_within(report["net"]["rx_bytes"], 100_000_000, 0.01, "net.rx_bytes")
    assert report["events"]["lost"] == 0


def test_sleeping_task(flow):
    report, _, status = observe_command(flow, ["/bin/sleep", "2"], "sleep")
    assert status == 0
    assert 1.95 * NS <= report["sched"]["sleep_ns"] <= 2.2 * NS, report["sched"]
    assert report["events"]["lost"] == 0


def test_runqueue_wait_with_twice_as_many_busy_threads_as_cores(flow):
    threads = 2 * os.cpu_count()
    report, _, status = observe_command(flow, [str(WORKLOAD), "threads", str(threads), "1000"],
                                        "contention")
    assert status == 0
    assert_within(report["sched"]["runqueue_wait_ns"], cpu_ns(report), 0.15,
                  "sched.runqueue_wait_ns vs on-CPU time")
    assert report["cpu"]["p95_cores"] > 0.8 * os.cpu_count()
    assert report["events"]["lost"] == 0


def test_cold_read_with_o_direct_is_blocked_on_io(flow):
    target = Path("/var/tmp") / f"tracer-odirect-{os.getpid()}"
    with open(target, "wb") as f:
        f.write(os.urandom(1 << 20) * 64)
        f.flush()
        os.fsync(f.fileno())
    try:
        report, _, status = observe_command(flow, [str(WORKLOAD), "odirect", str(target)],
                                            "odirect")
    finally:
        target.unlink()
    assert status == 0
    sched = report["sched"]
    print("odirect:", sched, "cpu", cpu_ns(report), "wall", report["wall_ns"])
    assert sched["blocked_io_ns"] > 0
    assert sched["blocked_io_ns"] > sched["sleep_ns"]
    assert sched["blocked_io_ns"] > cpu_ns(report)
    assert report["io"]["read_bytes"] >= 64 << 20
    assert report["events"]["lost"] == 0


def test_two_threads_of_one_process_are_two_tasks(flow):
    reports = {}

    def spin():
        with flow.task(task_run_id="spinner", task_name="spin") as task:
            until = time.thread_time() + 1.0
            while time.thread_time() < until:
                pass
        reports["spin"] = task.report

    def sleep():
        with flow.task(task_run_id="sleeper", task_name="sleep") as task:
            time.sleep(1.0)
        reports["sleep"] = task.report

    workers = [threading.Thread(target=spin), threading.Thread(target=sleep)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print({name: cpu_ns(r) for name, r in reports.items()})
    assert cpu_ns(reports["spin"]) >= 0.9 * NS
    assert cpu_ns(reports["sleep"]) <= 0.05 * NS
    assert reports["sleep"]["sched"]["sleep_ns"] >= 0.9 * NS
    assert all(r["memory"]["shared_process"] for r in reports.values())
    assert all(r["events"]["lost"] == 0 for r in reports.values())


def test_a_task_called_inside_a_task_counts_its_thread_for_itself(flow):
    outer, inner, truth, high = outer_calling_inner(flow)
    # The start and finish calls fall to one side or the other, in part.
    assert_cpu_within_truths({"inner": inner, "outer": outer}, truth, high)
    assert outer["thread"]["nested_tasks"] == 1
    assert outer["thread"]["nested_cpu_ns"] == cpu_ns(inner)
    assert outer["unknown"] == [] and inner["unknown"] == []


def test_a_pooled_thread_starts_from_zero_for_its_next_task(flow):
    with flow.task(task_run_id="first", task_name="busy") as first:
        until = time.thread_time() + 0.3
        while time.thread_time() < until:
            pass
    with flow.task(task_run_id="second", task_name="idle") as second:
        time.sleep(0.2)
    assert cpu_ns(first.report) >= 0.28 * NS
    assert cpu_ns(second.report) <= 0.03 * NS


def test_children_that_outlive_their_task_keep_counting(flow, sidecar):
    with flow.task(task_run_id="leaves-a-child", task_name="background") as task:
        child = subprocess.Popen([str(WORKLOAD), "live", "300"])
    assert task.report["proc"]["outliving"] == 1
    child.wait()
    # The sampler brings the kept report up to date once the child is gone.
    from sidecar import wait_until
    import json

    def updated():
        reports = json.loads(sidecar.tracerctl("reports", "--json", "--limit", "50").stdout)
        for report in reports["reports"]:
            if report["task_run_id"] == "leaves-a-child" and report["proc"]["outliving"] == 0:
                return report
        return None

    final = wait_until(updated, timeout=5, what="the lingering report to be updated")
    assert cpu_ns(final) >= cpu_ns(task.report) + 0.28 * NS


def test_a_thread_tasks_freed_peak_is_still_seen(flow):
    """256 MiB allocated and freed within a task, long before any 1 s sample:
    the process's high-water mark, raised by the unmap, still shows it."""
    with flow.task(task_run_id="peak", task_name="peak") as task:
        ballast = bytearray(256 << 20)
        for i in range(0, len(ballast), 4096):
            ballast[i] = 1
        del ballast
    assert task.report["memory"]["peak_rss_bytes"] >= 256 << 20
    assert task.report["memory"]["shared_process"] is True


@pytest.fixture
def unwaited_flow(sidecar, request):
    """A client that does not wait for a task's registration."""
    yield from flow_run(sidecar, request, start_wait_ms=0)


def test_the_late_registrations_here_are_unmarked(sidecar):
    assert "no marked task starts (--without-start-marks)" in sidecar.log()


def test_a_registration_that_reaches_the_sidecar_late_loses_nothing(unwaited_flow, sidecar):
    """The sidecar is stopped when the task starts, so the task spins 0.2 s and
    writes 64 MiB unregistered; it is registered while it spins again, and
    fsyncs. Everything from its start is its task's: the client took the
    thread's own counters as the task started, and the thread neither used a
    socket nor started anything before its registration. Writes to the page
    cache rarely block; where they did (dirty-page throttling on a busy
    machine), why the thread was off-CPU then is unknown, and says so. What
    its thread faulted in meanwhile (its own memory) is unknown too: page
    faults leave no counter of the thread's own to read back."""
    target = Path("/var/tmp") / f"tracer-late-{os.getpid()}"
    block = b"u" * (1 << 20)

    sidecar.process.send_signal(signal.SIGSTOP)
    try:
        with unwaited_flow.task(task_run_id="late", task_name="late") as task:
            started = time.thread_time_ns()
            switches = voluntary_switches()
            spin(0.2)
            with open(target, "wb") as scratch:
                for _ in range(64):
                    scratch.write(block)
                slept = voluntary_switches() != switches
                sidecar.process.send_signal(signal.SIGCONT)
                spin(0.1)
                scratch.flush()
                os.fsync(scratch.fileno())
            truth = time.thread_time_ns() - started
    finally:
        sidecar.process.send_signal(signal.SIGCONT)
        target.unlink(missing_ok=True)
    assert task.error is None, task.error
    report = task.report
    assert_within(report["io"]["write_bytes"], 64 << 20, 0.02, "io.write_bytes")
    assert_within(cpu_ns(report), truth, 0.02, "cpu")
    assert report["wall_ns"] >= truth, "the task's wall time starts at its start too"
    assert report["unobserved_ns"] >= 0.2 * NS
    own_memory = ["memory.own_peak_rss_bytes"]
    if slept:
        assert sorted(report["unknown"]) == own_memory + [
            "net.endpoints", "net.other_endpoints", "sched.blocked_io_ns", "sched.sleep_by_cause",
            "sched.sleep_ns"], \
            report["unknown_why"]
        assert "it slept or blocked" in " ".join(report["unknown_why"])
    else:
        assert report["unknown"] == own_memory, report["unknown_why"]
    assert "the memory its thread faulted in then was not seen" in " ".join(report["unknown_why"])
    assert report["net"]["tx_bytes"] == 0 and report["memory"]["peak_rss_bytes"] > 0


def spin(seconds):
    """Runs on a CPU for `seconds` of this thread's CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def voluntary_switches() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nvcsw


def test_a_late_registration_marks_unknown_what_the_thread_did_meanwhile(unwaited_flow, sidecar):
    """Before its registration reaches the stopped sidecar, the task sleeps
    and sends on a TCP socket: why it was off-CPU then and those bytes were
    not seen, and its report says so; its CPU and I/O stay exact."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        sidecar.process.send_signal(signal.SIGSTOP)
        try:
            with unwaited_flow.task(task_run_id="late-busy", task_name="late-busy") as task:
                with socket.create_connection(server.getsockname()) as sender:
                    sender.sendall(b"x" * 100_000)
                    time.sleep(0.05)
                    sidecar.process.send_signal(signal.SIGCONT)
                    time.sleep(0.2)
        finally:
            sidecar.process.send_signal(signal.SIGCONT)
    report = task.report
    assert {"sched.sleep_ns", "sched.sleep_by_cause", "sched.blocked_io_ns", "net.tx_bytes",
            "net.rx_bytes", "net.endpoints", "net.other_endpoints",
            "memory.own_peak_rss_bytes"} == set(report["unknown"]), \
        report["unknown_why"]
    assert any("it used a socket" in why for why in report["unknown_why"]), report["unknown_why"]
    assert any("it slept or blocked" in why for why in report["unknown_why"])
    assert report["cpu"]["user_ns"] is not None and report["proc"]["spawned"] == 0


def send_a_byte(address):
    with socket.create_connection(address) as connection:
        connection.sendall(b"x")


def start_a_thread(_address):
    helper = threading.Thread(target=lambda: None)
    helper.start()
    helper.join()


@pytest.mark.parametrize("action, why", [(send_a_byte, "it used a socket"),
                                         (start_a_thread, "it started a thread or process")])
def test_a_late_registration_sees_what_the_thread_did_though_another_took_its_note(
        unwaited_flow, sidecar, action, why):
    """The kernel keeps each CPU's newest socket use, and clone, of one
    untracked thread per tid mod NOTE_SLOTS, and moves it out when another
    such thread does the same on that CPU. Here the task does it, then a
    thread of the same tid mod NOTE_SLOTS does it on the same CPU, all before
    the task's registration reaches the stopped sidecar: the task's is still
    seen."""
    tid = threading.get_native_id()
    cpu = min(os.sched_getaffinity(0))
    go, done = threading.Event(), threading.Event()

    def take_the_note(address):
        os.sched_setaffinity(0, {cpu})
        go.wait()
        action(address)
        done.set()

    with socket.create_server(("127.0.0.1", 0)) as server:
        # Started before the task, so that it is not the task's clone.
        taker = same_slot_thread(tid, take_the_note, server.getsockname())
        affinity = os.sched_getaffinity(0)
        sidecar.process.send_signal(signal.SIGSTOP)
        try:
            with unwaited_flow.task(task_run_id=f"late-{action.__name__}",
                                    task_name="late-noted") as task:
                os.sched_setaffinity(0, {cpu})
                action(server.getsockname())
                go.set()
                assert done.wait(5)
                sidecar.process.send_signal(signal.SIGCONT)
                time.sleep(0.2)
        finally:
            sidecar.process.send_signal(signal.SIGCONT)
            os.sched_setaffinity(0, affinity)
            go.set()
            taker.join()
    report = task.report
    assert any(why in reason for reason in report["unknown_why"]), report["unknown_why"]
    assert report["net"]["tx_bytes"] is None


# The kernel's slots of untracked threads' notes on each CPU (bpf/task_state.h).
NOTE_SLOTS = int(re.search(r"#define UNTRACKED_NOTE_SLOTS (\d+)",
                           (Path(__file__).parents[2] / "bpf" / "task_state.h").read_text())[1])


def same_slot_thread(tid, target, *args) -> threading.Thread:
    """A started thread whose tid equals `tid` mod NOTE_SLOTS, running `target`."""
    tries = 20 * NOTE_SLOTS
    for _ in range(tries):
        ready, verdict = threading.Event(), []

        def run():
            verdict.append(threading.get_native_id() % NOTE_SLOTS == tid % NOTE_SLOTS)
            ready.set()
            if verdict[0]:
                target(*args)

        thread = threading.Thread(target=run)
        thread.start()
        ready.wait()
        if verdict[0]:
            return thread
        thread.join()
    raise AssertionError(f"no thread's tid was {tid} mod {NOTE_SLOTS} in {tries} tries")


def test_a_late_registration_after_the_task_started_a_thread_leaves_its_totals_unknown(
        unwaited_flow, sidecar):
    """A thread the task started before its registration arrived was followed
    by nothing: every total that includes it is unknown, not a part of it."""
    sidecar.process.send_signal(signal.SIGSTOP)
    try:
        with unwaited_flow.task(task_run_id="late-thread", task_name="late-thread") as task:
            helper = threading.Thread(target=lambda: sum(range(3_000_000)))
            helper.start()
            helper.join()
            sidecar.process.send_signal(signal.SIGCONT)
    finally:
        sidecar.process.send_signal(signal.SIGCONT)
    report = task.report
    assert report["unobserved_ns"] > 0
    assert {"cpu.user_ns", "io.wchar", "proc.spawned"} <= set(report["unknown"]), report["unknown"]
    assert report["cpu"]["user_ns"] is None and report["proc"]["spawned"] is None
    assert report["findings"] == [], "a run measured in part is not judged"


def test_a_forked_childs_first_task_is_measured_in_full_though_its_registration_is_late(
        unwaited_flow, sidecar):
    """A forked child's first task starts its own connection to the sidecar
    (which is stopped, so the registration comes late). The client library
    starts the child's connection thread before it reads the task's counters:
    that thread is the library's, not a clone of the task's, and the task,
    which only spins, is measured in full but for its memory faults."""
    readable, writable = os.pipe()
    sidecar.process.send_signal(signal.SIGSTOP)
    try:
        child = os.fork()
        if child == 0:
            status = 1
            try:
                os.close(readable)
                with unwaited_flow.task(task_run_id="forked", task_name="forked") as task:
                    spin(0.1)
                    os.kill(sidecar.process.pid, signal.SIGCONT)
                    spin(0.1)
                answer = json.dumps({"report": task.report, "error": task.error})
                os.write(writable, answer.encode())
                status = 0
            finally:
                os._exit(status)
        os.close(writable)
        with os.fdopen(readable, "rb") as answer:
            result = json.loads(answer.read() or b"{}")
        _, status = os.waitpid(child, 0)
    finally:
        sidecar.process.send_signal(signal.SIGCONT)
    assert status == 0 and result["error"] is None, result
    report = result["report"]
    print("unknown:", report["unknown"], report["unknown_why"])
    assert report["unobserved_ns"] >= 0.1 * NS
    assert "cpu.user_ns" not in report["unknown"] and "net.tx_bytes" not in report["unknown"], \
        report["unknown_why"]
    assert_within(cpu_ns(report), 0.2 * NS, 0.1, "cpu")


FIRST_TASK_FAULTING_ANON_THEN_FILE = """
import json, mmap, sys, tempfile
from prefect_tracer.client import SidecarClient

client = SidecarClient(sys.argv[1], start_wait_ms=5000, finish_wait_ms=5000,
                       connect_wait_ms=5000)
with tempfile.TemporaryFile() as backing:
    backing.truncate(16 << 20)
    with client.flow_run(flow_run_id="own-memory-file", flow_name="accuracy") as flow:
        with flow.task(task_run_id="anon-then-file", task_name="anon-then-file") as task:
            block = bytearray(64 << 20)
            block[::4096] = b"\x01" * (len(block) // 4096)
            with mmap.mmap(backing.fileno(), 16 << 20, access=mmap.ACCESS_READ) as pages:
                sum(pages[offset] for offset in range(0, len(pages), 4096))
print(json.dumps(task.report))
"""


def test_a_threads_own_memory_counts_the_file_pages_it_faults_in_not_the_processs(sidecar):
    """A fresh process's first task faults in 64 MiB of its own memory, then
    16 MiB of a file: the first change of its process's file pages that the
    kernel shows is one of many, so its own memory is the 80 MiB, not that
    plus every file page the process had (its interpreter and libraries)."""
    child = subprocess.run([sys.executable, "-c", FIRST_TASK_FAULTING_ANON_THEN_FILE,
                            str(sidecar.socket)], env=python_env(), capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert_within(report["memory"]["own_peak_rss_bytes"], 80 << 20, 0.05,
                  "memory.own_peak_rss_bytes")


def test_of_two_thread_tasks_the_one_that_allocates_has_the_memory(flow):
    """Two tasks that are threads of this process: one faults in 500 MiB, the
    other sleeps. The process-wide peak is both's; each task's own memory is
    what its thread faulted in."""
    reports = allocating_and_sleeping(flow, 500)
    own = {name: r["memory"]["own_peak_rss_bytes"] for name, r in reports.items()}
    print("own peak RSS:", own, "process-wide:",
          {name: r["memory"]["peak_rss_bytes"] for name, r in reports.items()})
    assert_within(own["allocate"], 500 << 20, 0.05, "memory.own_peak_rss_bytes")
    assert own["sleep"] < 10 << 20
    assert all(r["memory"]["shared_process"] for r in reports.values())
