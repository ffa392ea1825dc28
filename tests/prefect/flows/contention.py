"""Four tasks at once on Prefect's default task runner (threads of the flow
run's process): `python contention.py MODE [SECONDS]`, MODE one of
  python   pure-Python CPU work: the threads take turns on the GIL
  hashlib  hashing large buffers, which hashlib does without the GIL
  sleep    time.sleep
  network  one after another, each asks a local TCP server (a thread of the
           flow's process) that answers after the same time; its address is
           printed first
Prints the flow's final state name last."""

import hashlib
import socket
import sys
import time
from pathlib import Path

from prefect import flow, task

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "support"))
from late_server import late_server  # noqa: E402

MODE = sys.argv[1]
# How long each task works or waits (argv[2], if given).
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5 if MODE == "network" else 3.0

SERVER = late_server(SECONDS) if MODE == "network" else None


@task
def work(index: int) -> int:
    until = time.monotonic() + SECONDS
    done = 0
    if MODE == "python":
        while time.monotonic() < until:
            done += sum(i * i for i in range(10_000))
    elif MODE == "hashlib":
        buffer = bytes(64 << 20)
        while time.monotonic() < until:
            done += hashlib.sha256(buffer).digest()[0]
    elif MODE == "network":
        # A tenth of a second on the CPU first: where the kernel refuses
        # marked starts (fentry), a wait that begins before the task's
        # registration reaches the sidecar is not told apart, and a loaded
        # machine delays that registration by milliseconds.
        spin_until = time.monotonic() + 0.1
        while time.monotonic() < spin_until:
            done += 1
        with socket.create_connection(SERVER) as connection:
            connection.sendall(b"question\n")
            done += len(connection.recv(64))
    else:
        time.sleep(SECONDS)
    return done


@flow
def contention() -> None:
    if MODE == "network":
        for i in range(4):  # one after another: each its own wait on the server
            work(i)
        return
    futures = [work.submit(i) for i in range(4)]
    for future in futures:
        future.result()


if __name__ == "__main__":
    if SERVER:
        print(f"server {SERVER[0]}:{SERVER[1]}", flush=True)
    print(contention(return_state=True).name)
