"""A real tracer-sidecar process for tests: started on a private socket, its
log kept, stopped (and checked to have stopped cleanly) at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("TRACER_BUILD_DIR", REPO / "build"))
SIDECAR = BUILD / "bin" / "tracer-sidecar"
TRACERCTL = BUILD / "bin" / "tracerctl"
CLIENT_LIB = BUILD / "lib" / "libtracer_client.so"
WORKLOAD = BUILD / "bin" / "test_workload"
PLUGIN_DIR = REPO / "prefect-plugin"

# Make `import prefect_tracer` and the native library work in tests and in the
# Python subprocesses they start.
os.environ.setdefault("TRACER_CLIENT_LIB", str(CLIENT_LIB))
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))


def python_env(**extra: str) -> dict[str, str]:
    """Environment for a Python child that imports prefect_tracer."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_DIR), env.get("PYTHONPATH")]))
    env["TRACER_CLIENT_LIB"] = str(CLIENT_LIB)
    env.update(extra)
    return env


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def accepts_connections(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
            return True
        except OSError:
            return False


class Sidecar:
    def __init__(self, directory: Path, *args: str, env: Optional[dict] = None,
                 wrapper: tuple = (), binary: Path = SIDECAR, debug: bool = True) -> None:
        """`wrapper`: a command that execs the sidecar's (setpriv, unshare ...);
        `binary`: another build's sidecar (benchmarks comparing builds);
        `debug`: its log line per task start and finish, which tests read and
        benchmarks leave out (a user's sidecar logs them only when asked)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.socket = directory / "tracer.sock"
        self.state_dir = directory / "state"
        self.log_path = directory / "sidecar.log"
        self._args = args
        self._env = env
        self._wrapper = wrapper
        self._binary = binary
        self._debug = ("--debug",) if debug else ()
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 10.0) -> "Sidecar":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*self._wrapper, str(self._binary), "--socket", str(self.socket), "--state-dir",
             str(self.state_dir), *self._debug, *self._args],
            stdout=log, stderr=log, env=self._env,
        )
        log.close()
        wait_until(lambda: accepts_connections(self.socket) or self.process.poll() is not None,
                   timeout=timeout, what="the sidecar to listen")
        assert self.process.poll() is None, f"sidecar exited at start:\n{self.log()}"
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tracerctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(TRACERCTL), "--socket", str(self.socket), *args],
                              capture_output=True, text=True, check=check, timeout=30)

    def status(self) -> dict:
        return json.loads(self.tracerctl("status", "--json").stdout)


@dataclass(frozen=True)
class CommandUsage:
    """The kernel's ground truth for a command observed as a task: wait4's
    rusage of it and every descendant it waited for, less the CPU its process
    spent between fork() and waiting for its registration (which the task,
    registered after, rightly does not see)."""
    cpu_ns: int
    maxrss_bytes: int


def observe_command(flow, argv, task_name="command", before_exec=None):
    """Runs argv as a task of `flow`, registered (as its own process) before it
    execs, the way `tracerctl run` does. Returns (report, CommandUsage, exit
    status)."""
    release_read, release_write = os.pipe()
    held_read, held_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: wait to be registered, then become the command
        try:
            os.close(release_write)
            os.close(held_read)
            os.write(held_write, str(time.process_time_ns()).encode())
            os.close(held_write)
            os.read(release_read, 1)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(release_read)
    os.close(held_write)
    with os.fdopen(held_read, "rb") as held:
        before_held_ns = int(held.read() or 0)
    if before_exec is not None:
        before_exec(pid)
    with flow.task(task_run_id=f"{task_name}-{pid}", task_name=task_name, tid=pid,
                   own_process=True) as task:
        os.write(release_write, b"x")
        os.close(release_write)
        _, status, rusage = os.wait4(pid, 0)
    assert task.error is None, task.error
    cpu_ns = round((rusage.ru_utime + rusage.ru_stime) * 1e9) - before_held_ns
    return task.report, CommandUsage(cpu_ns, rusage.ru_maxrss * 1024), status


def thread_task_in_a_fresh_process(socket_path: Path, argv: list, repeat: int):
    """Runs argv `repeat` times in one task on the main thread of a fresh
    Python process (tests/support/thread_task.py). Returns (report, low, high):
    the kernel's own account of the task's CPU without and with its start and
    finish calls."""
    done = subprocess.run([sys.executable, str(REPO / "tests" / "support" / "thread_task.py"),
                           str(socket_path), str(repeat), *argv],
                          env=python_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result["report"], result["truth_low_ns"], result["truth_ns"]


@pytest.fixture
def sidecar(tmp_path):
    """A sidecar of its own for one test; it must stop cleanly afterwards."""
    process = Sidecar(tmp_path).start()
    yield process
    if process.alive():
        assert process.stop() == 0, f"sidecar did not stop cleanly:\n{process.log()}"
