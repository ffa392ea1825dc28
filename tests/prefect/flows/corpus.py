"""Flow shapes the plugin must observe without changing them: each one is
deployed twice (a worker without the plugin, a worker with it) and its
outcome compared. Every flow returns a value that depends only on its
inputs, so two runs of it must end the same way.

SHAPES names each flow and what the tests expect Tracer to report for it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import tempfile
import threading
import time

from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner


@task
def crunch(rounds: int) -> int:
    digest = b"tracer"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest[0]


@task
def add(a: int, b: int) -> int:
    return a + b


@flow
def sync_tasks() -> int:
    futures = [crunch.submit(20_000 + i) for i in range(4)]
    return sum(future.result() for future in futures)


@flow
def inline_calls() -> int:
    return add(crunch(1000), add(2, 3))


@flow
def mapped() -> int:
    return sum(add.map(list(range(60)), 1).result())


@flow
def inner(n: int) -> int:
    return add(crunch(n), 1)


@flow
def with_subflow() -> int:
    before = crunch(500)
    middle = inner(700)
    after = add(before, middle)
    return crunch(after)


ATTEMPTS: dict[str, int] = {}


def first_attempt_fails(task_name: str) -> str:
    """Fails the first time it is called in this process for `task_name`."""
    ATTEMPTS[task_name] = ATTEMPTS.get(task_name, 0) + 1
    if ATTEMPTS[task_name] < 2:
        raise ValueError("first attempt fails")
    return "ok"


@task(retries=2, retry_delay_seconds=0)
def fails_once_immediate_retry() -> str:
    return first_attempt_fails("immediate")


@task(retries=1, retry_delay_seconds=1)
def fails_once_delayed_retry() -> str:
    return first_attempt_fails("delayed")


@flow
def retries() -> str:
    return fails_once_immediate_retry() + fails_once_delayed_retry()


@task
def boom() -> int:
    raise RuntimeError("this task fails")


@flow
def absorbed_failure() -> str:
    state = boom(return_state=True)
    return f"{state.type.value}:{add(1, 1)}"


@flow
def upstream_failed() -> str:
    failed = boom.submit()
    downstream = add.submit(failed, 1)
    downstream.wait()
    return f"{failed.state.type.value}/{downstream.state.name}"


@task
async def pause_and_double(n: int) -> int:
    await asyncio.sleep(0.3)  # long enough that the three overlap on the event loop
    return 2 * n


@flow
async def async_gather() -> int:
    return sum(await asyncio.gather(*(pause_and_double(i) for i in range(3))))


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def process_pool() -> int:
    return sum(crunch.map([3000, 4000, 5000]).result())


@task(timeout_seconds=1)
def too_slow() -> int:
    time.sleep(5)
    return 1


@flow
def timeout() -> str:
    return too_slow(return_state=True).name


@task
def spawn(children: int) -> int:
    return sum(subprocess.run(["/bin/true"]).returncode for _ in range(children))


@flow
def subprocesses() -> int:
    return spawn(50)


@task
def write_and_read(megabytes: int) -> int:
    block = b"t" * (1 << 20)
    with tempfile.NamedTemporaryFile() as scratch:
        for _ in range(megabytes):
            scratch.write(block)
        scratch.flush()
        os.fsync(scratch.fileno())
        scratch.seek(0)
        return sum(len(chunk) for chunk in iter(lambda: scratch.read(1 << 20), b"")) >> 20


@flow
def file_io() -> int:
    return write_and_read(20)


@task
def echo_over_tcp(kilobytes: int) -> int:
    """A loopback echo server thread and a client: bytes sent and received."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        def echo() -> None:
            connection, _ = server.accept()
            with connection:
                while data := connection.recv(65536):
                    connection.sendall(data)

        thread = threading.Thread(target=echo)
        thread.start()
        payload = b"x" * (kilobytes << 10)
        received = 0
        with socket.create_connection(server.getsockname()) as client:
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            while data := client.recv(65536):
                received += len(data)
        thread.join()
    return received >> 10


@flow
def tcp() -> int:
    return echo_over_tcp(512)


FLOW_ATTEMPTS: dict[str, int] = {}


@flow(retries=1, retry_delay_seconds=0)
def flow_retry() -> int:
    FLOW_ATTEMPTS["n"] = FLOW_ATTEMPTS.get("n", 0) + 1
    value = add(FLOW_ATTEMPTS["n"], 0)
    if FLOW_ATTEMPTS["n"] < 2:
        raise ValueError("the first flow attempt fails")
    return value


@flow
def failing_flow() -> int:
    add(1, 2)
    raise RuntimeError("this flow fails")


def spin_for(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


@task
def spin(seconds: float) -> float:
    spin_for(seconds)
    return seconds


@task
def outer() -> float:
    """0.3 s of its own CPU, then a task called inline that spins 0.5 s."""
    spin_for(0.3)
    return spin(0.5) + 0.3


@flow
def nested_task() -> int:
    return outer()


@task
def sleep_long(seconds: float, started: str) -> float:
    if started:  # tells the test the task is running: it cancels the flow run then
        open(started, "w").close()
    time.sleep(seconds)
    return seconds


@flow
def cancelled(started: str = "") -> float:
    return sleep_long(120, started)


# name -> (the flow, the task rows Tracer's artifacts must show: name -> states)
SHAPES = {
    "sync_tasks": (sync_tasks, {"crunch": ["completed"] * 4}),
    "inline_calls": (inline_calls, {"crunch": ["completed"], "add": ["completed"] * 2}),
    "mapped": (mapped, {"add": ["completed"] * 60}),
    "with_subflow": (with_subflow, {"crunch": ["completed"] * 2, "inner/crunch": ["completed"],
                                    "inner/add": ["completed"], "add": ["completed"]}),
    "retries": (retries, {"fails_once_immediate_retry": ["completed", "failed"],
                          "fails_once_delayed_retry": ["completed", "failed"]}),
    "absorbed_failure": (absorbed_failure, {"boom": ["failed"], "add": ["completed"]}),
    "upstream_failed": (upstream_failed, {"boom": ["failed"]}),
    "async_gather": (async_gather, {"pause_and_double": ["completed"] * 3}),
    "process_pool": (process_pool, {"crunch": ["completed"] * 3}),
    "timeout": (timeout, {"too_slow": ["failed"]}),
    "subprocesses": (subprocesses, {"spawn": ["completed"]}),
    "file_io": (file_io, {"write_and_read": ["completed"]}),
    "tcp": (tcp, {"echo_over_tcp": ["completed"]}),
    "flow_retry": (flow_retry, {"add": ["completed"] * 2}),
    "failing_flow": (failing_flow, {"add": ["completed"]}),
    "nested_task": (nested_task, {"outer": ["completed"], "spin": ["completed"]}),
    "cancelled": (cancelled, {}),
}
