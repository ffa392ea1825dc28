"""Many client processes keeping many tasks live, for tests/system/test_resilience.py
and tests/bench/load_bench.py.

Each client is a Python process (this file run as a script) with one
SidecarClient, the Python plugin's own client, so the latencies it measures are
what a Prefect task pays: JSON encoding, the binding, the C ABI and the Cap'n Proto
round trip to the sidecar, timed around `FlowScope.start_task()` and
`TaskScope.finish()`.

A client runs TASKS threads. Each thread registers itself as a task and, while
the task is live, works in short bursts so that BPF events flow: a little CPU,
a small file written and read back and, now and then, a /bin/true subprocess
(fork, exec, exit). Protocol on the client's stdin/stdout:

  client prints  "ready N"   once every thread has started its first task
                             (N of them registered); those first tasks stay
                             live until "go", so the sidecar sees all of them
  parent writes  "go"        threads start cycling: finish the task after a
                             random lifetime, start the next one
  parent writes  "stop"      (or closes stdin) threads finish their tasks, the
                             flow runs are finished, results go to --out (JSON)

Flow runs rotate: a new one every --flow-seconds; a superseded run is finished
once its last task has finished. Times are time.monotonic() (CLOCK_MONOTONIC,
shared by every process of the machine, so the parent can compare them with its
own kill and restart times).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import selectors
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve()


# ---------------------------------------------------------------- the client process

def _client_main(argv: list[str]) -> None:
    import logging

    from prefect_tracer.client import SidecarClient

    parser = argparse.ArgumentParser()
    parser.add_argument("socket")
    parser.add_argument("index", type=int)
    parser.add_argument("--out", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--task-seconds", default="4:12")   # a cycled task's lifetime, min:max
    parser.add_argument("--pause-seconds", default="0.5:2.5")  # between work bursts
    parser.add_argument("--spawn-probability", type=float, default=0.1)  # per burst
    parser.add_argument("--flow-seconds", type=float, default=20)
    parser.add_argument("--deployment", default="load")
    parser.add_argument("--wait-ms", type=int, default=30000)
    # A start's wait for its confirmation: the tests confirm each; 0 is the
    # plugin's one-way start, whose failures show in the report instead.
    parser.add_argument("--start-wait-ms", type=int, default=None)
    args = parser.parse_args(argv)

    def span(text: str) -> tuple[float, float]:
        low, high = (float(x) for x in text.split(":"))
        return low, high

    task_span, pause_span = span(args.task_seconds), span(args.pause_seconds)
    # The client warns once when the sidecar is away; here every error is recorded instead.
    logging.getLogger("prefect_tracer").setLevel(logging.ERROR)

    class Client(SidecarClient):
        """SidecarClient whose flow finish says whether the sidecar confirmed it
        (the public FlowScope.finish() returns nothing, by design)."""

        def finish_flow_confirmed(self, scope) -> tuple[bool, str]:
            handle, scope._handle = scope._handle, None
            if handle is None:
                return False, "no flow run"
            if self._lib.tracer_flow_finish(handle, "completed", self._finish_wait_ms) == 0:
                return True, ""
            return False, self._lib.tracer_last_error()

    start_wait_ms = args.wait_ms if args.start_wait_ms is None else args.start_wait_ms
    client = Client(args.socket, start_wait_ms=start_wait_ms, finish_wait_ms=args.wait_ms,
                    connect_wait_ms=args.wait_ms)
    go, stop = threading.Event(), threading.Event()
    lock = threading.Lock()
    results = {
        "index": args.index,
        "pid": os.getpid(),
        # One row per task: [start called, start returned, start ok,
        #                    finish called, finish returned, finish ok, flow run id]
        "tasks": [],
        "errors": [],           # [time, "start"|"finish"|"report"|"flow", message]
        "flows": [],            # [flow run id, finish returned, ok, tasks]
        "execs": 0,             # sum of the reports' proc.execs: BPF saw them
        "spawned": 0,
        "report_events_lost": 0,
        "late": 0,              # reports with fields unknown for what a task did before
                                # its (one-way) registration reached the sidecar
        "late_started": 0,      # of which it had started a thread or process
        "dropped": 0,           # starts the client dropped: the sidecar had not answered
    }

    def error(kind: str, message: Optional[str]) -> None:
        with lock:
            results["errors"].append([time.monotonic(), kind, message or ""])

    class Flows:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.current = None
            self.opened_at = 0.0
            self.users: dict[int, int] = {}
            self.info: dict[int, tuple] = {}

        def _open(self):
            run_id = str(uuid.uuid4())
            scope = client.open_flow_run(flow_run_id=run_id, flow_name="load",
                                         deployment_name=args.deployment)
            self.users[id(scope)] = 0
            self.info[id(scope)] = (scope, run_id, [0])
            self.current, self.opened_at = scope, time.monotonic()

        def acquire(self):
            done = None
            with self.lock:
                if self.current is None:
                    self._open()
                elif go.is_set() and time.monotonic() - self.opened_at >= args.flow_seconds:
                    old = self.current
                    self._open()
                    if self.users[id(old)] == 0:
                        done = old
                scope = self.current
                self.users[id(scope)] += 1
                self.info[id(scope)][2][0] += 1
            if done is not None:
                self._finish(done)
            return scope, self.info[id(scope)][1]

        def release(self, scope) -> None:
            done = False
            with self.lock:
                self.users[id(scope)] -= 1
                done = scope is not self.current and self.users[id(scope)] == 0
            if done:
                self._finish(scope)

        def finish_current(self) -> None:
            with self.lock:
                scope, self.current = self.current, None
            if scope is not None:
                self._finish(scope)

        def _finish(self, scope) -> None:
            with self.lock:
                _, run_id, tasks = self.info.pop(id(scope))
                del self.users[id(scope)]
            ok, why = client.finish_flow_confirmed(scope)
            now = time.monotonic()
            with lock:
                results["flows"].append([run_id, now, ok, tasks[0]])
            if not ok:
                error("flow", why)

    flows = Flows()
    ready_lock = threading.Lock()
    ready = {"started": set(), "registered": 0}
    all_started = threading.Event()

    def burst(rng: random.Random, scratch: Path) -> None:
        total = 0
        for i in range(2000):  # a little CPU
            total += i * i
        scratch.write_bytes(os.urandom(4096))  # a small file, written and read back
        scratch.read_bytes()
        if rng.random() < args.spawn_probability:
            subprocess.run(["/bin/true"], check=False)

    def worker(slot: int) -> None:
        rng = random.Random(f"{args.index}-{slot}-{time.time_ns()}")
        scratch = Path(args.scratch) / f"client-{args.index}-{slot}.dat"
        first = True
        number = 0
        while True:
            flow, flow_run_id = flows.acquire()
            task_run_id = f"load-{args.index}-{slot}-{number}"
            number += 1
            called = time.monotonic()
            scope = flow.start_task(task_run_id=task_run_id, task_name=f"load-{slot % 4}")
            started = time.monotonic()
            start_ok = scope.error is None
            if not start_ok:
                error("start", scope.error)
            if first:
                first = False
                with ready_lock:
                    ready["started"].add(slot)
                    ready["registered"] += start_ok
                    if len(ready["started"]) == args.tasks:
                        all_started.set()
                while not go.is_set() and not stop.is_set():
                    burst(rng, scratch)
                    stop.wait(rng.uniform(*pause_span))
                ends = time.monotonic() + rng.uniform(0, task_span[1])  # spread the first cycle
            else:
                ends = time.monotonic() + rng.uniform(*task_span)
            while not stop.is_set() and time.monotonic() < ends:
                burst(rng, scratch)
                stop.wait(min(rng.uniform(*pause_span), max(0.0, ends - time.monotonic())))
            before = time.monotonic()
            scope.finish()
            report = scope.report
            after = time.monotonic()
            finish_ok = False
            if not start_ok:
                pass  # already counted: the task was never registered
            elif report is None:
                error("finish", scope.error)
            elif report.get("task_run_id") != task_run_id:
                error("report", f"report for {report.get('task_run_id')}, expected {task_run_id}")
            else:
                finish_ok = True
                with lock:
                    # Unknown (None) where the task started a process before its
                    # (one-way) registration reached the sidecar.
                    results["execs"] += report["proc"]["execs"] or 0
                    results["spawned"] += report["proc"]["spawned"] or 0
                    results["report_events_lost"] += report["events"]["lost"]
                    late = [why for why in report["unknown_why"] if "before its registration" in why]
                    results["late"] += bool(late)
                    results["late_started"] += any("started a thread or process" in why
                                                   for why in late)
            with lock:
                results["tasks"].append([called, started, start_ok, before, after, finish_ok,
                                         flow_run_id])
            flows.release(flow)
            if stop.is_set():
                break
        try:
            scratch.unlink()
        except OSError:
            pass

    def guarded_worker(slot: int) -> None:
        try:
            worker(slot)
        except BaseException as exception:  # recorded, so the parent sees it as an error
            error("exception", f"thread {slot}: {exception!r}")
            with ready_lock:
                ready["started"].add(slot)
                if len(ready["started"]) == args.tasks:
                    all_started.set()

    threads = [threading.Thread(target=guarded_worker, args=(slot,), daemon=True)
               for slot in range(args.tasks)]
    for thread in threads:
        thread.start()
    all_started.wait()
    print(f"ready {ready['registered']}", flush=True)
    for line in sys.stdin:
        if line.strip() == "go":
            go.set()
        elif line.strip() == "stop":
            break
    stop.set()
    go.set()
    for thread in threads:
        thread.join()
    flows.finish_current()
    usage_self = resource.getrusage(resource.RUSAGE_SELF)
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    results["cpu_seconds"] = (usage_self.ru_utime + usage_self.ru_stime +
                              usage_children.ru_utime + usage_children.ru_stime)
    results["dropped"] = client.dropped()
    client.close()
    Path(args.out).write_text(json.dumps(results))


# ---------------------------------------------------------------- the parent's side

def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]


class LoadClients:
    """CLIENTS client processes against one socket (see the module's docstring)."""

    def __init__(self, socket: Path, directory: Path, clients: int = 50, tasks: int = 20,
                 env: Optional[dict] = None, **options) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.clients, self.tasks = clients, tasks
        flags = []
        for name, value in options.items():
            flags += ["--" + name.replace("_", "-"), str(value)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, str(HERE), "client", str(socket), str(i),
                 "--out", str(directory / f"client-{i}.json"), "--scratch", str(directory),
                 "--tasks", str(tasks), *flags],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
            for i in range(clients)
        ]
        self.results: list[dict] = []

    def wait_ready(self, timeout: float = 60.0) -> int:
        """Waits for every client's "ready N"; returns the sum of N (tasks registered)."""
        registered = 0
        waiting = selectors.DefaultSelector()
        for process in self.processes:
            waiting.register(process.stdout, selectors.EVENT_READ, process)
        deadline = time.monotonic() + timeout
        while waiting.get_map():
            left = deadline - time.monotonic()
            events = waiting.select(max(0.0, left))
            if not events:
                raise AssertionError(f"{len(waiting.get_map())} clients not ready after {timeout} s")
            for key, _ in events:
                line = key.fileobj.readline()
                waiting.unregister(key.fileobj)
                if not line.startswith("ready "):
                    raise AssertionError(f"client {key.data.pid} ended before it was ready "
                                         f"(exit {key.data.poll()})")
                registered += int(line.split()[1])
        return registered

    def _tell(self, word: str) -> None:
        for process in self.processes:
            try:
                process.stdin.write(word + "\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def go(self) -> None:
        self._tell("go")

    def stop(self, timeout: float = 120.0) -> list[dict]:
        """Stops every client and gathers their results."""
        self._tell("stop")
        deadline = time.monotonic() + timeout
        failed = []
        for i, process in enumerate(self.processes):
            try:
                process.stdin.close()
            except OSError:
                pass
            try:
                code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                failed.append((i, code))
                continue
            self.results.append(json.loads((self.directory / f"client-{i}.json").read_text()))
        if failed:
            raise AssertionError(f"client processes failed (index, exit status): {failed}")
        return self.results

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()

    # Aggregates over every client's results.

    def rows(self) -> list[list]:
        return [row for r in self.results for row in r["tasks"]]

    def latencies(self, kind: str, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Seconds taken by the successful `kind` ("start" or "finish") calls made
        between `since` and `until` (time.monotonic())."""
        if kind == "start":
            return [row[1] - row[0] for row in self.rows() if row[2] and since <= row[0] < until]
        return [row[4] - row[3] for row in self.rows() if row[5] and since <= row[3] < until]

    def errors(self, since: float = 0.0, until: float = float("inf")) -> list[list]:
        return [e for r in self.results for e in r["errors"] if since <= e[0] < until]

    def total(self, field: str) -> float:
        return sum(r[field] for r in self.results)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "client":
    _client_main(sys.argv[2:])
