"""A real Prefect flow to try Tracer with: deploy it to a process work pool
whose worker runs with PREFECT_PLUGINS_ENABLED=true (see README.md here).
Each task stresses something different, so each gets different findings."""

import os
import subprocess
import time
import urllib.request

from prefect import flow, task


@task
def crunch(seconds: float = 3.0) -> int:
    """CPU-bound: one core, fully busy."""
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        n += 1
    return n


@task
def churn(processes: int = 300) -> None:
    """Many short-lived subprocesses, the CPU pollers cannot see."""
    for _ in range(processes):
        subprocess.run(["/bin/true"], check=True)


@task
def wait_for_partner(url: str = "", calls: int = 50) -> int:
    """Mostly waiting on an external system: by default the Prefect API
    itself, the one external system every flow run can reach."""
    url = url or os.environ.get("PREFECT_API_URL", "http://127.0.0.1:4200/api") + "/health"
    received = 0
    for _ in range(calls):
        with urllib.request.urlopen(url, timeout=30) as response:
            received += len(response.read())
    return received


@task
def oversized_buffer(mib: int = 512) -> int:
    """Memory that is allocated, touched and freed within the task."""
    ballast = bytearray(mib << 20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    return len(ballast)


@flow(name="tracer-example")
def tracer_example() -> None:
    crunch()
    churn()
    wait_for_partner()
    oversized_buffer()


if __name__ == "__main__":
    tracer_example()
