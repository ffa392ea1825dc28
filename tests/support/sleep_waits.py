"""Waits of about 1 s on one thing each, run as a task on the caller's thread,
for the sleep-by-cause checks (tests/system/test_sleep_causes.py and the
kernel matrix's tests/kernels/guest_checks.py). Each returns the task's report
and how long the wait took, timed around the wait itself (or, for a child,
until the child says it exits): the truth."""

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time

from late_server import late_server_process

CAUSES = ("network_ns", "lock_ns", "child_ns", "timer_ns", "pipe_ns", "other_ns")


def run_task(flow, name, wait):
    with flow.task(task_run_id=f"sleep-{name}", task_name=name) as task:
        began = time.monotonic()
        wait()
        truth = time.monotonic() - began
    assert task.report is not None, task.error
    return task.report, truth


def tcp_read(flow):
    address = late_server_process(1.0)

    def ask():
        with socket.create_connection(address) as connection:
            connection.sendall(b"question\n")
            assert connection.recv(64) == b"late answer\n"

    return run_task(flow, "tcp", ask)


def asyncio_tcp_read(flow):
    address = late_server_process(1.0)
    waited = {}

    async def ask():
        reader, writer = await asyncio.open_connection(*address)
        writer.write(b"question\n")
        # Timed around the answer alone: under emulation, connecting and
        # closing through the event loop take tens of milliseconds of CPU.
        began = time.monotonic()
        assert await reader.readline() == b"late answer\n"
        waited["s"] = time.monotonic() - began
        writer.close()

    loop = asyncio.new_event_loop()  # made before the task: its set-up is not the wait
    try:
        report, _ = run_task(flow, "asyncio-tcp", lambda: loop.run_until_complete(ask()))
        return report, waited["s"]
    finally:
        loop.close()


def held_lock(flow):
    lock, held = threading.Lock(), threading.Event()

    def hold():
        with lock:
            held.set()
            time.sleep(1.0)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        return run_task(flow, "lock", lambda: lock.acquire() and lock.release())
    finally:
        holder.join()


def child(flow):
    """The child says when it exits, and that is the wait's end: timed in the
    parent, the wait would also hold the time the parent, woken, then waited
    for a CPU, which under emulation on a busy host reached 60 ms and is no
    sleep. (schedstat's run delay cannot take it out: on 6.12 it grew by a
    whole lock wait.) Started before the task, so the task is its wait
    alone: starting a process takes tens of milliseconds under emulation."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import os, time\n"
         "time.sleep(1)\n"
         "os.write(1, str(time.monotonic_ns()).encode())\n"
         "os._exit(0)"],
        stdout=subprocess.PIPE)
    began = None

    def wait():
        nonlocal began
        began = time.monotonic_ns()
        process.wait()

    try:
        report, _ = run_task(flow, "child", wait)
        exited = int(process.stdout.read())
        return report, (exited - began) / 1e9
    finally:
        process.wait()
        process.stdout.close()


def time_sleep(flow):
    return run_task(flow, "timer", lambda: time.sleep(1.0))


def asyncio_sleep(flow):
    loop = asyncio.new_event_loop()
    try:
        return run_task(flow, "asyncio-sleep", lambda: loop.run_until_complete(asyncio.sleep(1.0)))
    finally:
        loop.close()


def late_pipe(flow):
    readable, writable = os.pipe()

    def write_late():
        time.sleep(1.0)
        os.write(writable, b"x")

    writer = threading.Thread(target=write_late)
    writer.start()
    try:
        return run_task(flow, "pipe", lambda: os.read(readable, 1))
    finally:
        writer.join()
        os.close(readable)
        os.close(writable)


# name: (the wait, the cause it is)
WAITS = {
    "a read from a late TCP server": (tcp_read, "network_ns"),
    "an asyncio read from a late TCP server": (asyncio_tcp_read, "network_ns"),
    "a lock another thread holds": (held_lock, "lock_ns"),
    "waiting for a child that sleeps 1 s": (child, "child_ns"),
    "time.sleep(1)": (time_sleep, "timer_ns"),
    "asyncio.sleep(1), an epoll wait its timeout ends": (asyncio_sleep, "timer_ns"),
    "a pipe written after 1 s": (late_pipe, "pipe_ns"),
}
