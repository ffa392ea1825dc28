"""Task start+finish pairs through prefect_tracer.client.SidecarClient, as
the Prefect plugin drives them (one-way: no wait, no report).

    python_bench.py SOCKET PROCESSES PAIRS_PER_PROCESS RATE

Same shape as client_bench.cpp, so the two lines compare directly: the
difference in per-task cost is what the Python layer adds per task. RATE is
each process's pairs per second.
"""

import statistics
import sys
import time
from multiprocessing import get_context


def run_client(socket: str, index: int, pairs: int, rate: float) -> tuple[list[float], int]:
    from prefect_tracer.client import SidecarClient

    client = SidecarClient(socket, start_wait_ms=0, finish_wait_ms=0, connect_wait_ms=5000)
    costs = []
    with client.flow_run(flow_run_id=f"pybench-{index}", flow_name="bench") as flow:
        began = time.monotonic()
        for i in range(pairs):
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            started = time.perf_counter()
            with flow.task(task_run_id="bench-task", task_name="t"):
                pass
            costs.append(time.perf_counter() - started)
    dropped = client.dropped()
    client.close()
    return costs, dropped


def main() -> None:
    socket, processes, pairs, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    with get_context("fork").Pool(processes) as pool:
        results = pool.starmap(run_client, [(socket, i, pairs, rate) for i in range(processes)])
    costs = sorted(cost for chunk, _ in results for cost in chunk)
    dropped = sum(d for _, d in results)
    p99 = costs[min(len(costs) - 1, int(0.99 * len(costs)))]
    print(f"Python     {processes:2} process(es) x {pairs} pairs ({rate:.0f} pairs/s each): "
          f"per task `with flow.task()` p50 {statistics.median(costs) * 1e6:.1f} us, "
          f"p99 {p99 * 1e6:.1f} us, {dropped} starts dropped")


if __name__ == "__main__":
    main()
