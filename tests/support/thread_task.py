"""One task on the main thread of a fresh Python process, running commands to
completion as Prefect's tasks run subprocesses. A fresh process, so that no
other thread of it ends meanwhile (which the /proc fallback would have to
count as perhaps the task's, and say it cannot tell). Prints one JSON object:
the task's report and the kernel's own account of its CPU, the thread's CPU
clock plus the RUSAGE_CHILDREN of what the process reaped meanwhile: at most
with the task's start and finish calls (truth_ns), at least without them
(truth_low_ns). Under emulation those calls can take 20 ms of CPU or more,
and a sidecar counts part of them.

    python3 thread_task.py SOCKET REPEAT ARGV...
"""

import json
import resource
import subprocess
import sys
import time

from prefect_tracer.client import SidecarClient


def main() -> None:
    socket_path, repeat, *argv = sys.argv[1:]
    client = SidecarClient(socket_path, start_wait_ms=5000, finish_wait_ms=5000,
                           connect_wait_ms=5000)
    with client.flow_run(flow_run_id="thread-task", flow_name="thread-task") as flow:
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        own_before = time.thread_time_ns()
        with flow.task(task_run_id="spawner", task_name="spawner") as task:
            own_inside_before = time.thread_time_ns()
            for _ in range(int(repeat)):
                subprocess.run(argv, check=True)
            own_inside = time.thread_time_ns() - own_inside_before
        own = time.thread_time_ns() - own_before
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client.close()
    reaped = (children_after.ru_utime - children_before.ru_utime
              + children_after.ru_stime - children_before.ru_stime)
    reaped_ns = round(reaped * 1e9)
    print(json.dumps({"report": task.report, "truth_ns": own + reaped_ns,
                      "truth_low_ns": own_inside + reaped_ns}))


if __name__ == "__main__":
    main()
