"""A sidecar started with a setting it cannot use says which setting and what
is wrong in one line, and exits: no uncaught exception, no stack, no start
that retries forever."""

import os
import subprocess
import time

import pytest

from sidecar import SIDECAR


def start(tmp_path, *args, env=None, wrapper=()):
    return subprocess.run([*wrapper, str(SIDECAR), "--socket", str(tmp_path / "s.sock"),
                           "--state-dir", str(tmp_path / "state"), *args],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})})


CASES = {
    "metrics address without a port": (["--metrics-listen", "nonsense"], {},
                                       "--metrics-listen=nonsense: expected HOST:PORT"),
    "metrics port out of range": (["--metrics-listen", "127.0.0.1:99999"], {},
                                  "a port from 1 to 65535"),
    "metrics host that does not resolve": (["--metrics-listen", "nosuchhost.invalid:9464"], {},
                                           "--metrics-listen nosuchhost.invalid:9464: cannot "
                                           "listen there"),
    "a missing API key file": ([], {"PREFECT_API_URL": "http://127.0.0.1:4200/api",
                                    "PREFECT_API_KEY_FILE": "/nonexistent/key"},
                               "PREFECT_API_KEY_FILE=/nonexistent/key: cannot open it: No such "
                               "file or directory"),
    "an API URL that is not one": ([], {"PREFECT_API_URL": "not a url"},
                                   "PREFECT_API_URL: 'not a url' is not an http:// or https:// "
                                   "URL"),
    "an API URL flag without a host": (["--prefect-api-url", "http:///api"], {},
                                       "--prefect-api-url: 'http:///api' is not"),
    "a thread map of gigabytes": (["--max-tracked-threads", "16777216"], {},
                                  "--max-tracked-threads=16777216: expected a number from 1024 "
                                  "to 1048576"),
    "a task map of gigabytes": (["--max-live-tasks", "4194304"], {},
                                "--max-live-tasks=4194304: expected a number from 64 to 262144"),
    "a socket path too long": (["--socket", "/tmp/" + "x" * 120], {},
                               "the path is 125 bytes; a Unix socket's holds at most 107"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_setting_is_one_line(tmp_path, case):
    args, env, expected = CASES[case]
    result = start(tmp_path, *args, env=env)
    print(result.stderr)
    assert result.returncode != 0
    said = error_lines(result)
    assert len(said) == 1 and expected in said[0], result.stderr
    assert "Uncaught exception" not in result.stderr and "stack:" not in result.stderr


def error_lines(result):
    """The sidecar's own error lines ("PROGRAM: what"), apart from its log."""
    return [line for line in result.stderr.splitlines() if line.startswith(f"{SIDECAR}: ")]


def test_a_collector_that_cannot_load_is_one_line(tmp_path):
    """--collector bpf where BPF cannot load (a user namespace has no CAP_BPF)."""
    result = start(tmp_path, "--collector", "bpf", wrapper=("unshare", "--user"))
    print(result.stderr)
    assert result.returncode != 0
    said = error_lines(result)
    assert len(said) == 1 and "--collector bpf: the kernel observer cannot load (" in said[0], \
        result.stderr
    assert "Uncaught exception" not in result.stderr and "stack:" not in result.stderr


def test_a_socket_in_a_directory_others_can_change_is_refused(tmp_path):
    """There, the socket could be swapped for a link between its bind and its
    chown, and the sidecar would give a file of their choosing to its group;
    a sticky directory (as /tmp) is fine: others cannot rename what is ours."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = start(tmp_path, "--socket", str(shared / "tracer.sock"))
    said = error_lines(result)
    assert result.returncode != 0
    assert len(said) == 1 and f"--socket {shared}/tracer.sock: its directory {shared} can be " \
        "changed by others (owner uid 0, mode 0777)" in said[0], result.stderr
    assert not (shared / "tracer.sock").exists()

    shared.chmod(0o1777)
    process = subprocess.Popen([str(SIDECAR), "--socket", str(shared / "tracer.sock"),
                                "--state-dir", str(tmp_path / "state")],
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not (shared / "tracer.sock").exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.05)
        assert (shared / "tracer.sock").stat().st_mode & 0o777 == 0o660
    finally:
        process.terminate()
        process.wait(timeout=30)
