"""Tasks that talk to endpoints the test makes, for the endpoint checks
(tests/system/test_endpoints.py and the kernel matrix's
tests/kernels/guest_checks.py): a late TCP server, a late DNS resolver that
glibc's own getaddrinfo asks, and a task with more endpoints than its table
holds. Each returns the task's report and the truth."""

import socket
import subprocess
import sys
import tempfile
import threading
import time

from late_server import late_server_process
from sleep_waits import run_task

QUESTION, ANSWER = b"question\n", b"late answer\n"


def listed(report, truth):
    """The report's entry for the truth's endpoint (address, port), or None."""
    found = [e for e in report["net"]["endpoints"] or []
             if (e["address"], e["port"]) == (truth["address"], truth["port"])]
    assert len(found) <= 1, report["net"]
    return found[0] if found else None


def tcp_exchange(flow):
    """One connection to a server that answers after 1 s: (report, truth)."""
    address = late_server_process(1.0)
    waited = {}

    def ask():
        with socket.create_connection(address) as connection:
            connection.sendall(QUESTION)
            began = time.monotonic()
            assert connection.recv(64) == ANSWER
            waited["s"] = time.monotonic() - began

    report, _ = run_task(flow, "endpoint-tcp", ask)
    return report, {"address": address[0], "port": address[1], "wait_s": waited["s"],
                    "tx_bytes": len(QUESTION), "rx_bytes": len(ANSWER), "connections": 1}


RESOLVER = "127.0.0.77"  # port 53, in a mount namespace whose resolv.conf names it


def late_resolver(delay_s):
    """A DNS server on RESOLVER:53 that answers every question after delay_s
    with "no such name": enough for getaddrinfo to wait on it and return.
    Its "span" is from the first question it got to the last answer it
    sent: what the asker waited on it (the asker's own set-up, reading its
    configuration and loading its modules, is not in it)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((RESOLVER, 53))
    times = {}

    def answer(query, peer):
        time.sleep(delay_s)
        times["last answer"] = time.monotonic()
        # the query's id, flags: a response, recursion available, NXDOMAIN;
        # its question echoed, no answers
        server.sendto(query[:2] + b"\x81\x83" + query[4:6] + b"\x00" * 6 + query[12:], peer)

    def serve():
        while True:
            try:
                query, peer = server.recvfrom(512)
            except OSError:
                return
            times.setdefault("first question", time.monotonic())
            threading.Thread(target=answer, args=(query, peer), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return server, times


LOOKUP = """
import socket
try:
    socket.getaddrinfo("tracer-endpoint-check.invalid", 80)
except socket.gaierror:
    pass
"""


def dns_lookup(flow):
    """A child process resolving a name with glibc through a resolver that
    answers after 1 s: its wait is on the resolver's endpoint."""
    server, times = late_resolver(1.0)
    with tempfile.NamedTemporaryFile("w", suffix=".resolv.conf") as conf:
        conf.write(f"nameserver {RESOLVER}\noptions attempts:1 timeout:5\n")
        conf.flush()
        command = ["unshare", "--mount", "sh", "-c",
                   f"mount --bind {conf.name} /etc/resolv.conf && "
                   f"exec {sys.executable} -c '{LOOKUP}'"]
        def look_up():
            subprocess.run(command, check=True, capture_output=True)

        try:
            report, _ = run_task(flow, "endpoint-dns", look_up)
        finally:
            server.close()
    return report, {"address": RESOLVER, "port": 53,
                    "wait_s": times["last answer"] - times["first question"]}


def many_endpoints(flow, count, name="endpoint-many"):
    """A task sending 10 bytes to each of `count` UDP ports (connected
    sockets: each port is an endpoint): (report, bytes sent)."""
    def send_all():
        for port in range(20000, 20000 + count):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("127.0.0.1", port))
                s.send(b"0123456789")

    report, _ = run_task(flow, name, send_all)
    return report, 10 * count
