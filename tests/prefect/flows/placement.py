"""Two kinds of task one after the other in one flow run: `crunch` burns a
CPU in pure Python for SECONDS, then `fetch` asks a local TCP server (a
thread of the flow's process) that answers after SECONDS:
`python placement.py [SECONDS]`. Prints the server's address first and the
flow's final state name last."""

import socket
import sys
import time
from pathlib import Path

from prefect import flow, task

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from late_server import late_server  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0

SERVER = late_server(SECONDS)


def spin(seconds: float) -> int:
    until = time.monotonic() + seconds
    done = 0
    while time.monotonic() < until:
        done += sum(i * i for i in range(10_000))
    return done


@task
def crunch() -> int:
    return spin(SECONDS)


@task
def fetch() -> int:
    # A moment on the CPU first: the task's one-way registration reaches the
    # sidecar before the task sleeps, so its sleep causes are measured.
    spin(0.05)
    with socket.create_connection(SERVER) as connection:
        connection.sendall(b"question\n")
        return len(connection.recv(64))


@flow
def placement() -> None:
    # On the task runner's worker threads, one after the other: the flow's
    # own thread goes on after a task and would count in it until its finish
    # reached the sidecar.
    crunch.submit().result()
    fetch.submit().result()


if __name__ == "__main__":
    print(f"server {SERVER[0]}:{SERVER[1]}", flush=True)
    print(placement(return_state=True).name)
