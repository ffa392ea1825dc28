"""Started by systemd socket activation: serves the passed socket, says READY=1."""

import socket
import subprocess

from prefect_tracer.client import SidecarClient
from sidecar import SIDECAR, wait_until


def test_socket_activation_and_readiness(tmp_path):
    notify_path = tmp_path / "notify"
    notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notifications.bind(str(notify_path))
    notifications.settimeout(20)
    listen_path = tmp_path / "activated.sock"
    log = open(tmp_path / "sidecar.log", "wb")
    activator = subprocess.Popen(
        ["systemd-socket-activate", "--listen", str(listen_path),
         f"--setenv=NOTIFY_SOCKET={notify_path}",
         str(SIDECAR), "--state-dir", str(tmp_path / "state"), "--debug"],
        stdout=log, stderr=log)
    try:
        wait_until(listen_path.exists, what="systemd-socket-activate to listen")
        # The first connection makes systemd-socket-activate start the sidecar
        # with the listening socket as fd 3.
        client = SidecarClient(str(listen_path), start_wait_ms=5000, finish_wait_ms=5000,
                               connect_wait_ms=5000)
        ready = notifications.recv(4096).decode()
        assert "READY=1" in ready.splitlines()
        assert "STATUS=serving on socket passed by systemd (fd 3)" in ready

        with client.flow_run(flow_run_id="activated", flow_name="etl") as flow:
            with flow.task(task_run_id="activated-task") as task:
                pass
        assert task.report["state"] == "completed"
    finally:
        activator.terminate()
        assert activator.wait(timeout=10) == 0
        notifications.close()
    stopping = notifications_text = (tmp_path / "sidecar.log").read_text()
    assert "stopping on signal 15" in stopping


def test_the_event_loop_pets_the_systemd_watchdog(tmp_path):
    notify_path = tmp_path / "notify"
    notifications = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notifications.bind(str(notify_path))
    notifications.settimeout(10)
    import os
    from sidecar import Sidecar
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="200000")
    sidecar = Sidecar(tmp_path, env=env).start()
    try:
        received = [notifications.recv(4096).decode() for _ in range(4)]
        assert sum("WATCHDOG=1" in r for r in received) >= 3  # every 100 ms
        assert any("READY=1" in r for r in received)
    finally:
        assert sidecar.stop() == 0
        notifications.close()
