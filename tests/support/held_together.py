"""A flow run of its own in a fresh process, whose thread tasks each hold
MIB MiB resident, all of them at once for 2.5 s (more than two of the
sidecar's 1 s samplings): `python held_together.py SOCKET FLOW TASKS MIB`.
Prints one JSON line: {"baseline": the process's resident bytes before the
tasks, "allocation": a task report's allocation}. For the kernel matrix's
cgroup v2 check (tests/kernels/guest_checks.py)."""

import json
import sys
import threading
import time
import uuid

from prefect_tracer.client import SidecarClient


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    socket, flow_name, tasks, mib = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = SidecarClient(socket, start_wait_ms=5000, finish_wait_ms=5000, connect_wait_ms=5000)
    together = threading.Barrier(tasks)
    reports = []

    def hold(flow, index: int) -> None:
        with flow.task(task_run_id=f"hold-{index}", task_name="hold") as task:
            size = mib << 20
            memory = bytearray(size)
            memory[::4096] = b"\x01" * (size // 4096)  # every page resident
            together.wait(timeout=120)
            time.sleep(2.5)
            del memory
        reports.append(task.report)

    with client.flow_run(flow_run_id=str(uuid.uuid4()), flow_name=flow_name) as flow:
        baseline = resident_bytes()
        threads = [threading.Thread(target=hold, args=(flow, i)) for i in range(tasks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    client.close()
    print(json.dumps({"baseline": baseline, "allocation": reports[0]["allocation"]}))


if __name__ == "__main__":
    main()
