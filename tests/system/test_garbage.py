"""Garbage on the socket costs the sender its connection, and nobody else anything."""

import os
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from prefect_tracer.client import SidecarClient
from sidecar import BUILD, Sidecar, wait_until


def send_and_close(path, payload: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(path))
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        try:  # the sidecar answers with an abort message or just closes
            while s.recv(4096):
                pass
        except OSError:
            pass


def frame_header(segment_words):
    """Cap'n Proto stream framing: segment count - 1, then each segment's size in words."""
    header = struct.pack("<I", len(segment_words) - 1)
    header += b"".join(struct.pack("<I", n) for n in segment_words)
    if len(segment_words) % 2 == 0:
        header += b"\0\0\0\0"
    return header


GARBAGE = {
    "random bytes": os.urandom(4096),
    # Says 1000 words follow, sends 10, then closes.
    "truncated frame": frame_header([1000]) + b"\0" * 80,
    # One 256 MiB segment: far over the sidecar's 512 KiB message limit.
    "oversized frame": frame_header([1 << 25]) + b"\0" * 4096,
    # Well framed, but the content is not an RPC message.
    "framed nonsense": frame_header([4]) + b"\xff" * 32,
}


@pytest.mark.parametrize("kind", GARBAGE)
def test_garbage_drops_only_that_connection(sidecar, kind):
    client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                           connect_wait_ms=2000)
    with client.flow_run(flow_run_id="bystander", flow_name="etl") as flow:
        with flow.task(task_run_id="before") as before:
            pass
        send_and_close(sidecar.socket, GARBAGE[kind])
        wait_until(lambda: "dropped connection from pid" in sidecar.log(),
                   what="the dropped connection to be logged")
        # The bystander's connection and its open flow run are untouched.
        with flow.task(task_run_id="after") as after:
            pass
    assert before.report is not None and after.report is not None
    assert sidecar.alive()
    status = sidecar.status()
    assert status["finished_tasks"] == 2 and status["crashed_tasks"] == 0
    dropped = [line for line in sidecar.log().splitlines() if "dropped connection" in line]
    assert len(dropped) == 1, dropped
    print(kind, "->", dropped[0])


def test_a_client_sending_nonsense_is_hung_up_on(sidecar):
    """Without the client closing its side, the sidecar ends the connection itself."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(sidecar.socket))
        s.sendall(GARBAGE["framed nonsense"])
        s.settimeout(5)
        received = b""
        while chunk := s.recv(4096):
            received += chunk
    assert b"non-struct pointer" in received  # the Abort message, then EOF
    assert sidecar.alive()


def test_a_client_that_never_reads_its_answers_is_hung_up_on(tmp_path):
    """It asks as fast as it can and neither reads nor finishes the answers:
    the sidecar hangs up on it before they pile up, says why, and serves the
    others."""
    sidecar = Sidecar(tmp_path, "--max-calls-per-second", "1000000").start()
    try:
        done = subprocess.run([str(BUILD / "bin" / "test_unread_client"), str(sidecar.socket)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        print(done.stdout.strip())
        wait_until(lambda: "it does not read its answers" in sidecar.log() or
                   "it does not finish its questions" in sidecar.log(),
                   what="the hang-up to be logged")
        client = SidecarClient(str(sidecar.socket), start_wait_ms=2000, finish_wait_ms=2000,
                               connect_wait_ms=2000)
        with client.flow_run(flow_run_id="bystander", flow_name="etl") as flow:
            with flow.task(task_run_id="after") as after:
                pass
        assert after.report is not None
        rss_kib = int(next(line.split()[1] for line in
                           Path(f"/proc/{sidecar.process.pid}/status").read_text().splitlines()
                           if line.startswith("VmHWM:")))
        assert rss_kib < 64 * 1024, f"VmHWM {rss_kib} KiB"
    finally:
        assert sidecar.stop() == 0
