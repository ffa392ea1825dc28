"""A real Prefect for tests: `prefect server start` (SQLite in its own
PREFECT_HOME, a loopback port) and process workers started with the
prefect-tracer plugin enabled. Runs in a venv made by scripts/python-envs.sh,
whose `prefect` is the one under test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

VENV_BIN = Path(sys.executable).parent
PREFECT = VENV_BIN / "prefect"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prefect_env(home: Path, api_url: str, **extra: str) -> dict[str, str]:
    """This process's environment less any Prefect or Tracer settings it may
    have, pointed at one server."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "TRACER_", "OTEL_"))}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=api_url,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO",
               PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra)
    return env


def _stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the process group, SIGKILL after `timeout`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


class PrefectServer:
    """`prefect server start` on 127.0.0.1. `stop()` and `start()` again keep
    the database (tests of delivery while the server is away). `settings`:
    the server's own (e.g. PREFECT_SERVER_API_AUTH_STRING), not its clients'."""

    def __init__(self, directory: Path, port: Optional[int] = None,
                 settings: Optional[dict[str, str]] = None) -> None:
        self.directory = directory
        self.settings = dict(settings or {})
        self.home = directory / "prefect-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.ui_url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prefect-server.log"
        self.process: Optional[subprocess.Popen] = None

    def env(self, **extra: str) -> dict[str, str]:
        return prefect_env(self.home, self.api_url, **extra)

    def start(self, timeout: float = 90.0) -> "PrefectServer":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env(**self.settings),
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"prefect server did not start: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        return self

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the server's session."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # exited while we looked
            if int(fields[3]) == self.process.pid:  # fields[3]: session id
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, busy_share: float = 0.05, window: float = 1.0,
                  timeout: float = 300.0) -> float:
        """Wait until the server uses under `busy_share` of a core over a
        `window`: it writes a flow's events after the flow's process has
        exited, and a run that starts meanwhile meets a locked SQLite
        database and Prefect's client backs off for up to 30 s. Returns the
        seconds waited."""
        started = time.monotonic()
        before = self.cpu_seconds()
        while time.monotonic() - started < timeout:
            time.sleep(window)
            now = self.cpu_seconds()
            if now - before < busy_share * window:
                return time.monotonic() - started
            before = now
        raise AssertionError(f"prefect server still busy after {timeout:.0f} s")

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([str(PREFECT), *args], env=self.env(), check=check,
                              capture_output=True, text=True, timeout=120)


class Worker:
    """`prefect worker start --pool POOL` with the given environment (the
    plugin's settings): flow runs of the pool's deployments run as its
    children, with the worker's environment."""

    def __init__(self, server: PrefectServer, pool: str, directory: Path, env: dict[str, str]) -> None:
        self.server = server
        self.pool = pool
        self.log_path = directory / f"worker-{pool}.log"
        self._env = env
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> "Worker":
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(PREFECT), "worker", "start", "--pool", self.pool, "--type", "process",
             "--prefetch-seconds", "5"],
            stdout=log, stderr=subprocess.STDOUT, env=self._env, start_new_session=True)
        log.close()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
