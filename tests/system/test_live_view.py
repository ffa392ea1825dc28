"""tracerctl top: the live tasks with their cores, memory and what each one's
thread waits on now, from a sidecar observing real threads."""

import json
import os
import socket
import threading
import time

from prefect_tracer.client import SidecarClient
from sidecar import wait_until


def test_top_shows_what_each_live_task_is_doing(sidecar):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=5000, finish_wait_ms=5000,
                           connect_wait_ms=5000)
    done = threading.Event()
    readable, writable = os.pipe()
    lock = threading.Lock()
    lock.acquire()
    started = threading.Barrier(6)
    server = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    server_address = server.getsockname()
    asker = socket.create_connection(server_address)

    def task(name, work):
        with flow.task(task_run_id=f"live-{name}", task_name=name):
            started.wait()
            work()

    def spin():
        while not done.is_set():
            pass

    workers = {
        "spin": spin,
        "pipe": lambda: os.read(readable, 1),
        "lock": lambda: lock.acquire(),
        "timer": lambda: time.sleep(4),
        "network": lambda: asker.recv(1),
    }
    with client.flow_run(flow_run_id="live-view", flow_name="live") as flow:
        threads = [threading.Thread(target=task, args=(name, work)) for name, work in workers.items()]
        for thread in threads:
            thread.start()
        started.wait()
        # Two sampler passes: cores come from the last window.
        time.sleep(2.2)
        snapshot = json.loads(sidecar.tracerctl("top", "--json").stdout)
        screens = sidecar.tracerctl("top", "-n", "2").stdout
        done.set()
        os.write(writable, b"x")
        lock.release()
        server.accept()[0].sendall(b"x")
        for thread in threads:
            thread.join()
    client.close()
    asker.close()
    server.close()
    os.close(readable)
    os.close(writable)

    tasks = {t["task_name"]: t for t in snapshot["tasks"]}
    print(json.dumps(tasks, indent=1))
    assert set(tasks) == set(workers)
    # The spinning thread runs Python, so whenever another thread of this process
    # (the one calling tracerctl) wants the GIL, it waits a few milliseconds on the
    # GIL's futex: caught then, its current wait is a short "lock" wait, truly.
    assert tasks["spin"]["cores"] > 0.5, tasks["spin"]
    assert tasks["spin"]["waiting_on"] == "" or (
        tasks["spin"]["waiting_on"] == "lock" and tasks["spin"]["waiting_ns"] < 100_000_000), \
        tasks["spin"]
    assert tasks["pipe"]["waiting_on"] == "pipe"
    assert tasks["lock"]["waiting_on"] == "lock"
    assert tasks["timer"]["waiting_on"] == "timer"
    assert tasks["network"]["waiting_on"] == "network"
    server_address = dict(zip(("address", "port"), server_address))
    assert {k: tasks["network"]["waiting_on_endpoint"][k] for k in ("address", "port")} == \
        server_address, tasks["network"]
    assert tasks["pipe"]["waiting_on_endpoint"]["address"] == ""
    for name in ("pipe", "lock", "timer", "network"):
        assert tasks[name]["cores"] < 0.05, tasks[name]
        assert 1_500_000_000 < tasks[name]["waiting_ns"] < 4_000_000_000, tasks[name]
    assert all(t["rss_bytes"] > 0 for t in tasks.values())
    assert all(t["flow_name"] == "live" for t in tasks.values())
    assert screens.count("FLOW/TASK") == 2, screens
    assert "live/pipe" in screens and "pipe for " in screens and "(running)" in screens
    assert f"network {server_address['address']}:{server_address['port']} for " in screens


def test_a_start_nobody_waits_for_reaches_the_sidecar_by_itself(sidecar):
    """The plugin's way, no wait for the start: the hand-off to the
    library's thread must wake it by itself. Nothing follows this start in
    its process, so it shows in `tracerctl top` only if it did."""
    client = SidecarClient(str(sidecar.socket), start_wait_ms=0, finish_wait_ms=0,
                           connect_wait_ms=5000)
    with client.flow_run(flow_run_id="alone", flow_name="live") as flow:
        scope = flow.start_task("alone-task", "alone")
        try:
            def listed():
                snapshot = json.loads(sidecar.tracerctl("top", "--json").stdout)
                return [t for t in snapshot["tasks"] if t["task_name"] == "alone"]

            assert wait_until(listed, timeout=5, what="the start in tracerctl top")
        finally:
            scope.finish()
    client.close()
