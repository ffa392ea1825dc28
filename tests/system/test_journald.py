"""Under systemd the sidecar logs to journald with the run ids as fields.

The test plays journald's part: it listens on a socket of its own, and the
sidecar runs in a mount namespace where that socket's directory is
journald's, so the test reads the datagrams sd_journal_send writes there (the
native protocol: FIELD=value lines) whether a real journald owns the
machine's socket or not."""

import os
import socket
import struct
from pathlib import Path

import pytest

from prefect_tracer.client import SidecarClient
from sidecar import Sidecar, wait_until

JOURNAL_DIR = Path("/run/systemd/journal")


def parse_entry(datagram: bytes) -> dict:
    fields, rest = {}, datagram
    while rest:
        line, sep, rest = rest.partition(b"\n")
        if b"=" in line:
            name, _, value = line.partition(b"=")
            fields[name.decode()] = value.decode()
        else:  # binary-safe form: NAME\n<le64 size><value>\n
            size = struct.unpack("<Q", rest[:8])[0]
            fields[line.decode()] = rest[8:8 + size].decode()
            rest = rest[8 + size + 1:]
    return fields


@pytest.fixture
def journal(tmp_path):
    """The directory standing in for journald's, and a reader of what reached it."""
    directory = tmp_path / "journal"
    directory.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(directory / "socket"))
    listener.setblocking(False)
    entries = []

    def read():
        while True:
            try:
                entries.append(parse_entry(listener.recv(1 << 20)))
            except BlockingIOError:
                return entries

    yield directory, read
    listener.close()


def with_journal_at(directory: Path) -> tuple:
    """A wrapper that runs the sidecar with `directory` mounted over journald's."""
    return ("unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mkdir -p {JOURNAL_DIR} && mount --bind "$0" {JOURNAL_DIR} && exec "$@"',
            str(directory))


def test_log_lines_about_a_run_carry_its_ids(tmp_path, journal):
    directory, journal = journal
    env = dict(os.environ, JOURNAL_STREAM="8:12345")
    sidecar = Sidecar(tmp_path, env=env, wrapper=with_journal_at(directory)).start()
    try:
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        with client.flow_run(flow_run_id="flow-j", flow_name="journal") as flow:
            with flow.task(task_run_id="task-j", task_name="logged"):
                pass
        wait_until(lambda: any(e.get("TASK_RUN_ID") == "task-j" for e in journal()),
                   what="a journal entry about task-j")
        entries = journal()
    finally:
        assert sidecar.stop() == 0
    assert all(e["SYSLOG_IDENTIFIER"] == "tracer-sidecar" for e in entries)
    about_task = [e for e in entries if e.get("TASK_RUN_ID") == "task-j"]
    assert about_task[0]["FLOW_RUN_ID"] == "flow-j"
    assert "logged started on tid" in about_task[0]["MESSAGE"]
    assert about_task[0]["PRIORITY"] == "7"  # debug
    about_flow = [e for e in entries if e.get("FLOW_RUN_ID") == "flow-j" and "TASK_RUN_ID" not in e]
    assert any("opened by pid" in e["MESSAGE"] for e in about_flow)
    # Lines about no run have no run fields, and nothing went to stderr.
    assert any("serving on" in e["MESSAGE"] and "FLOW_RUN_ID" not in e for e in entries)
    assert "serving on" not in sidecar.log()
