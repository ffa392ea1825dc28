"""A task's endpoints (report net.endpoints) against ground truth the test
makes (tests/support/endpoint_waits.py): which endpoint, how long the task
waited on it (within 5 %), the bytes both ways and the connections (exact);
a task with more endpoints than its table holds; waits cut short; and the
external_wait finding naming the endpoint."""

import socket
import subprocess
import sys
import threading
import time

import pytest

from endpoint_waits import dns_lookup, listed, many_endpoints, tcp_exchange
from sleep_waits import run_task

from test_accuracy import flow_run

NS = 1_000_000_000
TABLE = 64  # ENDPOINTS_PER_TASK (bpf/task_state.h)


@pytest.fixture
def flow(sidecar, request):  # a sidecar of its own for each test (conftest)
    yield from flow_run(sidecar, request, start_wait_ms=5000)


def only_endpoint(report, truth):
    print(report["net"])
    assert "net.endpoints" not in report["unknown"], report["unknown_why"]
    endpoint = listed(report, truth)
    assert endpoint is not None, report["net"]
    wait_s = endpoint["wait_ns"] / NS
    assert abs(wait_s - truth["wait_s"]) <= 0.05 * truth["wait_s"], (endpoint, truth)
    return endpoint


def test_a_late_tcp_server_is_the_endpoint_waited_on(flow):
    report, truth = tcp_exchange(flow)
    endpoint = only_endpoint(report, truth)
    assert (endpoint["tx_bytes"], endpoint["rx_bytes"], endpoint["connections"]) == \
        (truth["tx_bytes"], truth["rx_bytes"], truth["connections"])
    assert not endpoint["listening"]
    assert report["net"]["other_endpoints"]["wait_ns"] <= 0.05 * NS
    waits = [f for f in report["findings"] if f["kind"] == "external_wait"]
    assert len(waits) == 1 and f"{truth['address']}:{truth['port']}" in waits[0]["summary"], \
        report["findings"]


def test_a_dns_lookup_is_a_wait_on_the_resolver(flow):
    report, truth = dns_lookup(flow)
    only_endpoint(report, truth)


def test_more_endpoints_than_the_table_holds(flow):
    count = 10_000
    report, sent = many_endpoints(flow, count)
    net = report["net"]
    other = net["other_endpoints"]
    assert net["tx_bytes"] == sent
    assert len(net["endpoints"]) == 10
    assert other["unlisted"] and len(net["endpoints"]) + other["count"] == TABLE
    assert sum(e["tx_bytes"] for e in net["endpoints"]) + other["tx_bytes"] == sent


def test_endpoint_tables_are_given_back(flow):
    """Each task's table returns to the kernel's map when the task is gone:
    more tasks than the map holds full tables for all fill theirs."""
    for i in range(16384 // TABLE + 16):
        report, _ = many_endpoints(flow, TABLE, name=f"endpoint-table-{i}")
        other = report["net"]["other_endpoints"]
        assert len(report["net"]["endpoints"]) + other["count"] == TABLE, (i, other)
        assert not other["unlisted"], i


def test_a_wait_cut_short_by_shutdown_or_a_kill(flow):
    """A thread waiting on a socket that another thread shuts down, and a
    child process killed while it waits on one: each wait counts until it
    ended, on its endpoint, and nothing else is charged to it."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    address = listener.getsockname()
    child = [sys.executable, "-c",
             "import socket, sys; s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); "
             "s.recv(1)", address[0], str(address[1])]

    def wait_then_cut():
        asker = socket.create_connection(address)
        threading.Timer(0.5, asker.shutdown, args=(socket.SHUT_RDWR,)).start()
        assert asker.recv(1) == b""  # woken by the shutdown
        asker.close()
        process = subprocess.Popen(child)
        time.sleep(0.5)  # it connects and waits
        process.kill()
        process.wait()

    with listener:
        report, _ = run_task(flow, "endpoint-cut", wait_then_cut)
    print(report["net"])
    endpoint = listed(report, {"address": address[0], "port": address[1]})
    assert endpoint is not None and endpoint["connections"] == 2, report["net"]
    # 0.5 s until the shutdown, and under 0.5 s for the child (it started first).
    assert 0.6 * NS <= endpoint["wait_ns"] <= 1.05 * NS, endpoint
    assert report["sched"]["sleep_by_cause"]["network_ns"] >= endpoint["wait_ns"]
