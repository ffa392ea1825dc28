"""Task start+finish pairs through prefect_tracer.client.SidecarClient.

    python_bench.py SOCKET PROCESSES PAIRS_PER_PROCESS

Same shape as client_bench.cpp, so the two lines compare directly: the
difference in per-pair time is what the Python layer adds per task.
"""

import statistics
import sys
import time
from multiprocessing import get_context


def run_client(socket: str, index: int, pairs: int) -> list[float]:
    from prefect_tracer.client import SidecarClient

    client = SidecarClient(socket, start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
    starts = []
    with client.flow_run(flow_run_id=f"pybench-{index}", flow_name="bench") as flow:
        for _ in range(pairs):
            began = time.perf_counter()
            with flow.task(task_run_id="bench-task", task_name="t") as task:
                starts.append(time.perf_counter() - began)
            if task.report is None:
                raise SystemExit(f"client {index}: {task.error}")
    return starts


def main() -> None:
    socket, processes, pairs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    began = time.perf_counter()
    with get_context("fork").Pool(processes) as pool:
        results = pool.starmap(run_client, [(socket, i, pairs) for i in range(processes)])
    seconds = time.perf_counter() - began
    starts = sorted(s for chunk in results for s in chunk)
    p99 = starts[min(len(starts) - 1, int(0.99 * len(starts)))]
    print(f"Python     {processes} process(es) x {pairs} pairs: {len(starts) / seconds:.0f} pairs/s, "
          f"start p50 {statistics.median(starts) * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us")


if __name__ == "__main__":
    main()
