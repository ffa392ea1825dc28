"""The Prefect API stand-in enforces what Prefect enforces (so the delivery
tests can fail): schema, key rule, credentials."""

import json
import urllib.error
import urllib.request

import pytest

from prefect_api import PrefectApi


def post(api, body, authorization=None):
    request = urllib.request.Request(api.url + "/artifacts/", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    if authorization:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def api():
    server = PrefectApi()
    yield server
    server.stop()


def test_a_valid_artifact_is_created(api):
    status, artifact = post(api, {"key": "tracer-etl", "type": "markdown", "data": "# hi",
                                  "metadata_": {"a": "b"}})
    assert status == 201 and artifact["id"] and artifact["key"] == "tracer-etl"


@pytest.mark.parametrize("body", [
    {"key": "x", "type": "markdown", "unexpected": 1},                     # additionalProperties
    {"key": "x", "type": "markdown", "metadata_": {"a": 1}},               # metadata values are strings
    {"key": "x", "type": "markdown", "flow_run_id": "not-a-uuid"},          # format: uuid
    {"key": "Bad_Key", "type": "markdown"},                                 # the key rule
])
def test_what_prefect_refuses_is_refused(api, body):
    status, _ = post(api, body)
    assert status == 422
    assert api.artifacts == []


def test_credentials_are_checked():
    server = PrefectApi(api_key="k")
    try:
        assert post(server, {"key": "x"})[0] == 401
        assert post(server, {"key": "x"}, "Bearer k")[0] == 201
    finally:
        server.stop()
