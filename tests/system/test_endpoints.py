"""A task's endpoints (report net.endpoints) against ground truth the test
makes (tests/support/endpoint_waits.py): which endpoint, how long the task
waited on it (within 5 %), the bytes both ways and the connections (exact);
a task with more endpoints than its table holds; and the external_wait
finding naming the endpoint."""

import pytest

from endpoint_waits import dns_lookup, listed, many_endpoints, tcp_exchange

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
    count = 1000
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
