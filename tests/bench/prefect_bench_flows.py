"""The benchmark's flows, run as `python prefect_bench_flows.py NAME` against a
real Prefect server; prints the flow's wall time and its body's (seconds) as
the last line. The body is the tasks' part: submitting them and waiting for
their results. The rest of the flow's time is Prefect's own start and end of
the run, which wait on the server and come in steps of about a second."""

import hashlib
import sys
import time

from prefect import flow, task

body_seconds = 0.0


def timed_body(run):
    global body_seconds
    started = time.perf_counter()
    result = run()
    body_seconds = time.perf_counter() - started
    return result


@task
def noop(i: int) -> int:
    return i


@task
def cpu_bound(i: int) -> int:
    digest = str(i).encode()
    for _ in range(40_000):  # about 20 ms of one core here
        digest = hashlib.sha256(digest).digest()
    return digest[0]


@flow
def noop_tasks_1000() -> int:
    return timed_body(lambda: len(noop.map(range(1000)).result()))


@flow
def cpu_tasks_100() -> int:
    return timed_body(lambda: len(cpu_bound.map(range(100)).result()))


FLOWS = {"noop-1000": noop_tasks_1000, "cpu-100": cpu_tasks_100}

if __name__ == "__main__":
    started = time.perf_counter()
    state = FLOWS[sys.argv[1]](return_state=True)
    elapsed = time.perf_counter() - started
    assert state.is_completed(), state
    print(f"{elapsed:.4f} {body_seconds:.4f}")
