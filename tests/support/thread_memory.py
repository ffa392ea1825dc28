"""Two tasks that are threads of the caller's process, for the thread-memory
checks (tests/system/test_accuracy.py and the kernel matrix's
tests/kernels/guest_checks.py): one writes `mib` MiB (every page faulted in)
and holds it a moment, the other sleeps meanwhile. Returns both reports:
{"allocate": ..., "sleep": ...}."""

import threading
import time


def allocating_and_sleeping(flow, mib):
    reports = {}
    allocated = threading.Event()

    def allocate():
        with flow.task(task_run_id="allocator", task_name="allocate") as task:
            block = b"\x01" * (mib << 20)  # written, so every page is faulted in
            allocated.set()
            time.sleep(0.5)
            del block
        reports["allocate"] = task.report

    def sleep():
        with flow.task(task_run_id="bystander", task_name="sleep") as task:
            allocated.wait(60)
            time.sleep(0.5)
        reports["sleep"] = task.report

    workers = [threading.Thread(target=sleep), threading.Thread(target=allocate)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return reports
