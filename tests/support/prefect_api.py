"""A stand-in for the Prefect API's artifact endpoint, for the system suite,
which runs under Debian's Python without Prefect: tests/system/test_resilience.py
counts with it the artifacts of a sidecar killed under load. Delivery itself
(outages, faults, credentials, shared history) is tested against a real
Prefect server in tests/prefect/. It validates every request against
Prefect's own schemas (tests/fixtures/prefect-artifact-schemas.json,
extracted from Prefect's OpenAPI spec), enforces the rules the server
enforces (key ^[a-z0-9-]*$, credentials), answers like Prefect (201 and an
Artifact), and can fail on purpose: a given status for the next requests,
or down altogether."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import jsonschema

FIXTURE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" /
                      "prefect-artifact-schemas.json").read_text())
KEY_RULE = re.compile(r"^[a-z0-9-]*$")  # prefect/server/schemas/actions.py, ArtifactCreate.key


def request_validator(path):
    schema = FIXTURE["paths"][path]["post"]["content"]["application/json"]["schema"]
    resolver = jsonschema.RefResolver.from_schema(FIXTURE)
    return jsonschema.Draft202012Validator(schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())


class PrefectApi:
    def __init__(self, api_key: Optional[str] = None, auth_string: Optional[str] = None) -> None:
        self.api_key = api_key
        self.auth_string = auth_string
        self.artifacts: list[dict] = []   # accepted bodies, in order
        self.requests: list[dict] = []    # every request: path, headers, status
        self.faults: list[tuple[int, dict, str]] = []  # (status, headers, body) for the next creates
        # The next N valid creates are stored, then the connection is closed
        # without an answer: the client cannot tell whether they arrived.
        self.hang_ups_after_storing = 0
        self._validators = {path: request_validator(path)
                            for path in ["/artifacts/", "/artifacts/filter"]}
        self.created: list[dict] = []     # the Artifact objects answered, oldest first
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self.port = 0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                status, headers, body = api.handle(self.path, dict(self.headers), raw)
                if status is None:  # stored, but the answer is lost
                    self.close_connection = True
                    return
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """An outage: connections are refused until start()."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, path: str, headers: dict, raw: bytes):
        with self._lock:
            status, reply_headers, body = self._answer(path, headers, raw)
            self.requests.append({"path": path, "headers": headers, "status": status})
            return status, reply_headers, body

    def _answer(self, path: str, headers: dict, raw: bytes):
        route = path[len("/api"):] if path.startswith("/api") else path
        if route not in self._validators:
            return 404, {}, {"detail": "Not Found"}
        expected = None
        if self.auth_string:
            expected = "Basic " + base64.b64encode(self.auth_string.encode()).decode()
        elif self.api_key:
            expected = "Bearer " + self.api_key
        if expected and headers.get("Authorization") != expected:
            return 401, {}, {"detail": "Unauthorized"}
        if self.faults and route == "/artifacts/":
            status, reply_headers, body = self.faults.pop(0)
            return status, reply_headers, {"detail": body}
        try:
            body = json.loads(raw)
        except ValueError as error:
            return 422, {}, {"detail": f"invalid JSON: {error}"}
        errors = sorted(self._validators[route].iter_errors(body), key=str)
        if errors:
            return 422, {}, {"detail": [{"msg": e.message, "loc": list(e.absolute_path)} for e in errors]}
        if route == "/artifacts/filter":
            return 200, {}, self._filter(body)
        if body.get("key") is not None and not KEY_RULE.match(body["key"]):
            return 422, {}, {"detail": "Artifact key must only contain lowercase letters, numbers, "
                                       "and dashes."}
        now = datetime.now(timezone.utc).isoformat()
        artifact = dict({"task_run_id": None, "flow_run_id": None, "metadata_": None,
                         "description": None, "data": None}, **body,
                        id=str(uuid.uuid4()), created=now, updated=now)
        self.artifacts.append(body)
        self.created.append(artifact)
        if self.hang_ups_after_storing > 0:
            self.hang_ups_after_storing -= 1
            return None, {}, None
        return 201, {}, artifact

    def _filter(self, body: dict) -> list:
        """The subset of Prefect's artifact filter Tracer uses: key and flow_run_id any_,
        sort, limit."""
        artifacts = body.get("artifacts") or {}
        keys = (artifacts.get("key") or {}).get("any_")
        flow_runs = (artifacts.get("flow_run_id") or {}).get("any_")
        found = [a for a in self.created if (keys is None or a["key"] in keys)
                 and (flow_runs is None or a["flow_run_id"] in flow_runs)]
        if body.get("sort", "ID_DESC") in ("CREATED_DESC", "ID_DESC"):
            found = found[::-1]
        return found[body.get("offset", 0):][:body.get("limit") or 200]
