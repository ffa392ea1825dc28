"""Artifacts reach a real Prefect server exactly once through the failures a
real server will not show on demand, injected by a thin proxy in front of it
(tests/support/fault_proxy.py): a 503, a 429 with Retry-After, an attempt
never answered, an attempt stored but never answered (with the sidecar
living on, and killed meanwhile), and a refusal (a 4xx: parked). After each,
every artifact the sidecar produced is one version in the server, and the
proxy's record shows the sidecar did what sidecar/prefect/artifact_delivery.h
says: an answered failure is sent again as is, an unanswered attempt is
looked up (POST /artifacts/filter) before it is sent again."""

import signal

import pytest

from fault_proxy import FaultProxy
from prefect_artifacts import (all_delivered, assert_stored_exactly_once, connect, create_deployment,
                               outbox, produced, run_flow, stored, unique)
from sidecar import Sidecar, wait_until

REQUEST_TIMEOUT = 15  # s: how long the sidecar waits for an answer (sidecar/prefect/api_client.cpp)
STORED_UNANSWERED = "was stored by an unanswered attempt; not sending it again"


@pytest.fixture(scope="module")
def deployment(prefect_server):
    return create_deployment(unique("faults"), "nightly")


class Node:
    """A sidecar whose Prefect API is the proxy in front of the real server."""

    def __init__(self, server, directory):
        self.server = server
        self.proxy = FaultProxy(server.api_url)
        self.directory = directory
        self.sidecar = self.start()

    def start(self) -> Sidecar:
        return Sidecar(self.directory, env=self.server.env(PREFECT_API_URL=self.proxy.url)).start()

    def run(self, deployment, tasks=("extract", "load")) -> str:
        """One real flow run of `deployment`, run through the sidecar; its id."""
        flow_run_id = deployment.flow_runs(1)[0]
        client = connect(self.sidecar)
        try:
            run_flow(client, deployment, flow_run_id, tasks)
        finally:
            client.close()
        return flow_run_id

    def delivered(self, flow_run_ids, timeout):
        wait_until(lambda: all_delivered(self.sidecar, flow_run_ids, 2 * len(flow_run_ids)),
                   timeout=timeout, interval=0.1,
                   what=f"the artifacts of {len(flow_run_ids)} flow runs delivered")

    def attempts(self, exchange):
        """Every POST /artifacts/ of the artifact `exchange` carried."""
        artifact = exchange.json()["metadata_"]["tracer_artifact_id"]
        return [e for e in self.proxy.requests()
                if e.json()["metadata_"]["tracer_artifact_id"] == artifact]

    def lookups(self, exchange):
        """The sidecar's checks for the artifact `exchange` carried: filters on
        its key and flow run (the seeder's filters name no flow run)."""
        body = exchange.json()
        wanted = {"key": {"any_": [body["key"]]}, "flow_run_id": {"any_": [body["flow_run_id"]]}}
        return [e for e in self.proxy.requests(path="/artifacts/filter")
                if e.json().get("artifacts") == wanted]


@pytest.fixture
def node(prefect_server, tmp_path):
    created = Node(prefect_server, tmp_path / "node")
    yield created
    stopped = created.sidecar.stop() if created.sidecar.alive() else 0
    created.proxy.stop()
    assert stopped == 0, f"sidecar did not stop cleanly:\n{created.sidecar.log()[-3000:]}"


def first_create(node, fault):
    """The POST /artifacts/ that got `fault`."""
    faulted = [e for e in node.proxy.requests() if e.fault == fault]
    assert len(faulted) == 1, [(e.fault, e.status) for e in node.proxy.requests()]
    return faulted[0]


def test_a_503_is_sent_again_without_a_lookup(node, deployment, prefect_server):
    node.proxy.fail("503")
    flow_run_id = node.run(deployment)
    node.delivered([flow_run_id], timeout=20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [flow_run_id])
    faulted = first_create(node, "503")
    assert [e.status for e in node.attempts(faulted)] == [503, 201]
    # A 503 is an answer: the artifact is known not to be stored, no need to ask.
    assert node.lookups(faulted) == []
    assert "not delivered (HTTP 503); retrying in" in node.sidecar.log()


def test_a_429_waits_for_retry_after(node, deployment, prefect_server):
    # Longer than any first backoff (0.5 to 1 s), so the wait can only be Retry-After's.
    node.proxy.fail("429", retry_after=3)
    flow_run_id = node.run(deployment)
    node.delivered([flow_run_id], timeout=20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [flow_run_id])
    faulted = first_create(node, "429")
    refused, sent = node.attempts(faulted)
    assert (refused.status, sent.status) == (429, 201)
    assert sent.received - refused.answered >= 3 - 0.05  # the sidecar's clock is not ours
    assert node.lookups(faulted) == []


def test_an_attempt_never_answered_is_looked_up_then_sent_again(node, deployment, prefect_server):
    node.proxy.fail("hang")  # not forwarded: the server never sees it
    flow_run_id = node.run(deployment)
    node.delivered([flow_run_id], timeout=REQUEST_TIMEOUT + 20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [flow_run_id])
    faulted = first_create(node, "hang")
    held, sent = node.attempts(faulted)
    assert (held.status, sent.status) == (None, 201)
    assert held.answered - held.received >= REQUEST_TIMEOUT - 1  # the sidecar gave up, not the proxy
    lookups = node.lookups(faulted)
    assert len(lookups) == 1
    assert held.received + REQUEST_TIMEOUT - 1 <= lookups[0].received <= sent.received
    assert lookups[0].status == 200


def test_an_attempt_stored_but_never_answered_is_not_sent_again(node, deployment, prefect_server):
    """The exactly-once case: Prefect has the artifact, the sidecar never heard.
    It must find it in Prefect (its metadata_.tracer_artifact_id) and stop."""
    node.proxy.fail("store-then-hang-up")
    flow_run_id = node.run(deployment)
    node.delivered([flow_run_id], timeout=20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [flow_run_id])
    faulted = first_create(node, "store-then-hang-up")
    assert node.attempts(faulted) == [faulted]  # one POST of it, ever
    lookups = node.lookups(faulted)
    assert len(lookups) == 1 and lookups[0].received >= faulted.answered
    assert lookups[0].status == 200
    log = node.sidecar.log()
    assert STORED_UNANSWERED in log and f"flow_run_id={flow_run_id}" in log


def test_a_sidecar_killed_while_an_attempt_is_unanswered_does_not_send_it_again(
        node, deployment, prefect_server):
    """The attempt is stored by Prefect and held unanswered; the sidecar is
    killed (-9) meanwhile. The restarted one, on the same state directory,
    finds it in Prefect and delivers the rest of its outbox."""
    node.proxy.fail("store-then-hang")
    flow_run_id = node.run(deployment)
    wait_until(lambda: stored(prefect_server.api_url, [flow_run_id]), timeout=10,
               what="Prefect storing the first attempt")
    faulted = first_create(node, "store-then-hang")
    assert faulted.status is None  # held: the sidecar has not heard
    node.sidecar.stop(signal.SIGKILL)
    node.sidecar = node.start()
    node.delivered([flow_run_id], timeout=20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [flow_run_id])
    assert node.attempts(faulted) == [faulted]
    assert len(node.lookups(faulted)) == 1
    assert STORED_UNANSWERED in node.sidecar.log()


def parked(node, flow_run_ids):
    return sorted(produced(node.sidecar, flow_run_ids).values()) == ["parked", "parked"]


def test_an_artifact_prefect_refuses_is_parked_and_delivered_once_after_retry(
        node, deployment, prefect_server):
    """The proxy breaks the key of both artifacts; the real server refuses
    them (its own 422 and reason) and they are parked, not retried. Put back
    in line with --retry-parked, they are delivered once each."""
    node.proxy.fail("bad-key", times=2)
    first = node.run(deployment)
    wait_until(lambda: parked(node, [first]), timeout=10, what="both artifacts parked")
    for item in (i for i in outbox(node.sidecar) if i["flow_run_id"] == first):
        assert item["last_error"].startswith("HTTP 422: "), item["last_error"]
        assert "Artifact key must only contain lowercase letters" in item["last_error"]
    assert "refused by Prefect and parked" in node.sidecar.log()
    assert [e.status for e in node.proxy.requests()] == [422, 422]  # not retried
    assert node.sidecar.alive()

    node.sidecar.tracerctl("outbox", "--retry-parked")
    second = node.run(deployment)
    node.delivered([first, second], timeout=20)
    assert_stored_exactly_once(node.sidecar, prefect_server.api_url, [first, second])


def test_retry_parked_alone_delivers(node, deployment, prefect_server):
    """--retry-parked makes the artifacts due now: no other flow run needed."""
    node.proxy.fail("bad-key", times=2)
    flow_run_id = node.run(deployment)
    wait_until(lambda: parked(node, [flow_run_id]), timeout=10, what="both artifacts parked")
    node.sidecar.tracerctl("outbox", "--retry-parked")
    node.delivered([flow_run_id], timeout=5)
