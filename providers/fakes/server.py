"""The shared machinery of every fake platform.

A fake is a FakePlatform subclass whose `routes` map (method, regex) to a handler returning a
FakeResponse. Failures are scripted: `fail_next(n, FakeResponse(...))` answers the next n matching
requests with that response (429, 5xx, a platform error body); `delay_next(n, seconds)` makes them
hang (client timeouts). Everything can also be driven over HTTP under /_fake/ (for the demo and the
benchmarks, which run the fake in another process):

    GET  /_fake/requests            every recorded request, as JSON
    POST /_fake/reset               forget requests and scripted failures
    POST /_fake/fail   {"count", "status", "body", "headers", "path_contains"}
    POST /_fake/delay  {"count", "seconds", "path_contains"}
"""

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeResponse:
    status: int = 200
    body: Any = None  # dict/list -> JSON; str/bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body or b"null")

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def as_dict(self) -> dict:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "at": self.at,
        }


@dataclass
class _Script:
    remaining: int
    response: FakeResponse | None = None
    delay: float = 0.0
    path_contains: str = ""


Handler = Callable[["FakePlatform", RecordedRequest, re.Match], FakeResponse]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog is 5: eight senders connecting at once overflowed it, and the
    # dropped SYNs came back after the kernel's 1 s retransmit (p99 of a send 1,019 ms, measured).
    request_queue_size = 128


class FakePlatform:
    """Subclasses set `routes = [(method, pattern, handler_method_name), ...]`."""

    name = "fake"
    routes: list[tuple[str, str, str]] = []

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._compiled = [(m, re.compile(p), h) for m, p, h in self.routes]
        self._server = _Server((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakePlatform":
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> "FakePlatform":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- scripting -----------------------------------------------------------------------------------
    def fail_next(self, count: int, response: FakeResponse, path_contains: str = "") -> None:
        with self._lock:
            self._scripts.append(_Script(remaining=count, response=response, path_contains=path_contains))

    def delay_next(self, count: int, seconds: float, path_contains: str = "") -> None:
        with self._lock:
            self._scripts.append(_Script(remaining=count, delay=seconds, path_contains=path_contains))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()

    def received(self, path_contains: str = "", method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if path_contains in r.path and (method is None or r.method == method)
            ]

    def wait_for(self, count: int, path_contains: str = "", timeout: float = 10.0) -> list[RecordedRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path_contains)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        return self.received(path_contains)

    def _take_script(self, path: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.remaining > 0 and script.path_contains in path:
                    script.remaining -= 1
                    return script
        return None

    # --- dispatch ------------------------------------------------------------------------------------
    def _dispatch(self, req: RecordedRequest) -> FakeResponse:
        if req.path.startswith("/_fake/"):
            return self._control(req)
        with self._lock:
            self.requests.append(req)
        script = self._take_script(req.path)
        if script is not None:
            if script.delay:
                time.sleep(script.delay)
            if script.response is not None:
                return script.response
        for method, pattern, handler_name in self._compiled:
            if method != req.method:
                continue
            match = pattern.fullmatch(req.path)
            if match:
                return getattr(self, handler_name)(req, match)
        return self.not_found(req)

    def not_found(self, req: RecordedRequest) -> FakeResponse:
        return FakeResponse(404, {"error": f"no route for {req.method} {req.path}"})

    def _control(self, req: RecordedRequest) -> FakeResponse:
        action = req.path[len("/_fake/") :].strip("/")
        if action == "requests" and req.method == "GET":
            with self._lock:
                return FakeResponse(200, [r.as_dict() for r in self.requests])
        if action == "reset" and req.method == "POST":
            self.reset()
            return FakeResponse(200, {"ok": True})
        data = req.json if req.body else {}
        if action == "fail" and req.method == "POST":
            self.fail_next(
                int(data.get("count", 1)),
                FakeResponse(int(data.get("status", 500)), data.get("body"), data.get("headers") or {}),
                data.get("path_contains", ""),
            )
            return FakeResponse(200, {"ok": True})
        if action == "delay" and req.method == "POST":
            self.delay_next(int(data.get("count", 1)), float(data.get("seconds", 1)), data.get("path_contains", ""))
            return FakeResponse(200, {"ok": True})
        return FakeResponse(404, {"error": f"unknown control {action}"})

    def _handler_class(self):
        platform = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Buffered: the headers and the body leave in one write (flushed after each request), not
            # two small ones that wait on the client's delayed ACK (40 ms per kept-alive request).
            wbufsize = -1

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k: v for k, v in self.headers.items()},
                    body=body,
                    at=time.time(),
                )
                try:
                    resp = platform._dispatch(req)
                except Exception as exc:  # a bug in a fake must show, not hang the client
                    resp = FakeResponse(599, {"fake_error": repr(exc)})
                payload = resp.encoded()
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for key, value in resp.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        return _Handler
