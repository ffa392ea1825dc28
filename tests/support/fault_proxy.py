"""A thin HTTP proxy in front of a real Prefect server, for the failures a
real server will not show on demand. It forwards every request unchanged
and the server's answer unchanged, except for the requests a test asked to
fail (by default the next POST /api/artifacts/), which get one of:

  "503"                 Service Unavailable, not forwarded (nothing stored)
  "429"                 Too Many Requests with Retry-After, not forwarded
  "hang"                not forwarded and never answered: held open until the
                        client gives up (its timeout) or dies
  "store-then-hang"     forwarded (the server stores the artifact), then held
                        open without an answer until the client gives up or dies
  "store-then-hang-up"  forwarded (the server stores the artifact), then the
                        connection is closed without an answer
  "bad-key"             forwarded with the artifact's key made one Prefect
                        refuses (upper case): the server's own 422 comes back

Every exchange is recorded (method, path, headers, body, what was done, the
status the client got), so a test can tell what the client sent and when.
Standard library only; 127.0.0.1 only."""

from __future__ import annotations

import http.client
import json
import select
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import urlsplit

FAULTS = {"503", "429", "hang", "store-then-hang", "store-then-hang-up", "bad-key"}
# Connection-level headers: they describe one hop, not the request
# (RFC 9110 section 7.6.1); the proxy's own framing replaces them.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade"}
HOLD_LIMIT = 120.0  # a held connection is let go after this even if the client never gives up


@dataclass
class Exchange:
    method: str
    path: str
    headers: dict                   # names in lower case
    body: bytes
    received: float                 # time.monotonic() when the request was read
    fault: Optional[str] = None     # the fault applied, if any
    status: Optional[int] = None    # what the client was answered; None: no answer
    answered: Optional[float] = None  # time.monotonic() of the answer or the hang-up

    def json(self):
        return json.loads(self.body)


@dataclass
class _Fault:
    kind: str
    method: str
    path: str
    retry_after: int = 1


class FaultProxy:
    """Listens on a free 127.0.0.1 port from construction until stop()."""

    def __init__(self, upstream: str) -> None:
        """upstream: the server's API URL, e.g. http://127.0.0.1:4200/api."""
        target = urlsplit(upstream)
        assert target.hostname == "127.0.0.1", "loopback only"
        self.exchanges: list[Exchange] = []  # every request, in arrival order
        self._upstream_port = target.port
        self._api_path = target.path
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                proxy._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """The API URL to give clients instead of the server's."""
        return f"http://127.0.0.1:{self.port}{self._api_path}"

    def fail(self, kind: str, times: int = 1, method: str = "POST", path: str = "/artifacts/",
             retry_after: int = 1) -> None:
        """The next `times` requests `method` `path` (relative to the API URL)
        get fault `kind`."""
        assert kind in FAULTS, kind
        with self._lock:
            self._faults += [_Fault(kind, method, self._api_path + path, retry_after)] * times

    def requests(self, method: str = "POST", path: str = "/artifacts/") -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges
                    if e.method == method and e.path == self._api_path + path]

    def stop(self) -> None:
        self._stopping.set()  # lets held connections go
        self._server.shutdown()
        self._server.server_close()

    # The handler side, on the server's threads.

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        exchange = Exchange(handler.command, handler.path,
                            {name.lower(): value for name, value in handler.headers.items()}, body,
                            time.monotonic())
        with self._lock:
            self.exchanges.append(exchange)
            fault = next((f for f in self._faults
                          if (f.method, f.path) == (exchange.method, exchange.path)), None)
            if fault is not None:
                self._faults.remove(fault)
                exchange.fault = fault.kind
        kind = fault.kind if fault else None
        if kind in ("503", "429"):
            headers = {"Retry-After": str(fault.retry_after)} if kind == "429" else {}
            self._answer(handler, exchange, int(kind), headers,
                         json.dumps({"detail": f"injected {kind}"}).encode())
            return
        if kind == "hang":
            self._hold(handler, exchange)
            return
        if kind == "bad-key":
            mangled = json.loads(body)
            mangled["key"] = mangled["key"].upper()
            body = json.dumps(mangled).encode()
        try:
            status, headers, answer = self._forward(handler, body)
        except OSError as error:  # the server is away: the client sees a dropped connection
            exchange.fault = exchange.fault or f"upstream: {error}"
            self._hang_up(handler, exchange)
            return
        if kind == "store-then-hang":
            self._hold(handler, exchange)
        elif kind == "store-then-hang-up":
            self._hang_up(handler, exchange)
        else:
            self._answer(handler, exchange, status, headers, answer)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes):
        connection = http.client.HTTPConnection("127.0.0.1", self._upstream_port, timeout=60)
        try:
            headers = {name: value for name, value in handler.headers.items()
                       if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"}
            if body or handler.command in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(body))
            # Host and Accept-Encoding go as the client sent them (http.client
            # adds its own only when they are missing).
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            reply_headers = [(name, value) for name, value in response.getheaders()
                             if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"]
            return response.status, reply_headers, answer
        finally:
            connection.close()

    @staticmethod
    def _answer(handler, exchange: Exchange, status: int, headers, body: bytes) -> None:
        handler.send_response_only(status)
        for name, value in (headers.items() if isinstance(headers, dict) else headers):
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        exchange.status, exchange.answered = status, time.monotonic()

    @staticmethod
    def _hang_up(handler, exchange: Exchange) -> None:
        """Closes the connection without a byte of answer (the server closes it
        after this handler returns)."""
        handler.close_connection = True
        exchange.answered = time.monotonic()

    def _hold(self, handler, exchange: Exchange) -> None:
        """No answer until the client closes its end (gave up, or died)."""
        connection = handler.connection
        deadline = time.monotonic() + HOLD_LIMIT
        while not self._stopping.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([connection], [], [], 0.1)
            if readable:
                try:
                    if not connection.recv(4096, 0):
                        break  # end of file: the client is gone
                except OSError:
                    break
        self._hang_up(handler, exchange)
