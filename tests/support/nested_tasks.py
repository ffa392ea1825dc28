"""A task that calls a task on its own thread, with each one's CPU truth: the
thread's CPU clock over the parts of the blocks that are each task's own, at
least without the tasks' start and finish calls (`truth`), at most with them
(`truth_high`). On a virtual machine a start or finish call that wakes the
client library's idle thread can take a few hundred microseconds of the
caller's CPU, and part of that falls inside the task's readings."""

import time


def spin_for(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def outer_calling_inner(flow) -> tuple[dict, dict, dict, dict]:
    """outer spins 0.3 s, calls inner (0.5 s), spins 0.2 s more. Returns both
    reports and the truths (ns) by task name, without and with the calls."""
    truth, high = {}, {}
    outer_began = time.thread_time_ns()
    with flow.task(task_run_id="outer", task_name="outer") as outer:
        began = time.thread_time_ns()
        spin_for(0.3)
        own = time.thread_time_ns() - began
        inner_began = time.thread_time_ns()
        with flow.task(task_run_id="inner", task_name="inner", nested_in="outer") as inner:
            began = time.thread_time_ns()
            spin_for(0.5)
            truth["inner"] = time.thread_time_ns() - began
        high["inner"] = time.thread_time_ns() - inner_began
        began = time.thread_time_ns()
        spin_for(0.2)
        truth["outer"] = own + time.thread_time_ns() - began
    high["outer"] = time.thread_time_ns() - outer_began - truth["inner"]
    return outer.report, inner.report, truth, high


def assert_cpu_within_truths(reports: dict, truth: dict, high: dict,
                             tolerance: float = 0.02) -> None:
    """Each report's CPU (by task name) lies between its truths, give or take
    `tolerance`."""
    for name, report in reports.items():
        cpu = report["cpu"]["user_ns"] + report["cpu"]["system_ns"]
        print(f"{name}: measured {cpu}, truth {truth[name]}..{high[name]}")
        assert truth[name] * (1 - tolerance) <= cpu <= high[name] * (1 + tolerance), \
            (name, cpu, truth[name], high[name])
