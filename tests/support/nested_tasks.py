"""A task that calls a task on its own thread, with each one's CPU truth: the
thread's CPU clock over the parts of the blocks that are each task's own."""

import time


def spin_for(seconds: float) -> None:
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def outer_calling_inner(flow) -> tuple[dict, dict, dict]:
    """outer spins 0.3 s, calls inner (0.5 s), spins 0.2 s more. Returns both
    reports and the truths (ns) by task name."""
    truth = {}
    with flow.task(task_run_id="outer", task_name="outer") as outer:
        began = time.thread_time_ns()
        spin_for(0.3)
        own = time.thread_time_ns() - began
        with flow.task(task_run_id="inner", task_name="inner", nested_in="outer") as inner:
            began = time.thread_time_ns()
            spin_for(0.5)
            truth["inner"] = time.thread_time_ns() - began
        began = time.thread_time_ns()
        spin_for(0.2)
        truth["outer"] = own + time.thread_time_ns() - began
    return outer.report, inner.report, truth
