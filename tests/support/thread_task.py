"""One task on the main thread of a fresh Python process, running commands to
completion as Prefect's tasks run subprocesses. A fresh process, so that no
other thread of it ends meanwhile (which the /proc fallback would have to
count as perhaps the task's, and say it cannot tell). Prints one JSON object:
the task's report and the kernel's own account of its CPU, the thread's CPU
clock plus the RUSAGE_CHILDREN of what the process reaped meanwhile.

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
            for _ in range(int(repeat)):
                subprocess.run(argv, check=True)
        own = time.thread_time_ns() - own_before
        children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client.close()
    reaped = (children_after.ru_utime - children_before.ru_utime
              + children_after.ru_stime - children_before.ru_stime)
    print(json.dumps({"report": task.report, "truth_ns": own + round(reaped * 1e9)}))


if __name__ == "__main__":
    main()
