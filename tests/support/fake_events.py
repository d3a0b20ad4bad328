"""A fake of Split's events and telemetry APIs on loopback: records every POST."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lowercase names
    body: Any


@dataclass
class FakeEvents:
    status: int = 200  # what every POST answers; set 500 to make the API fail
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self.arrived = threading.Condition()
        self.gate = threading.Event()  # cleared: every POST waits until it is set again
        self.gate.set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api"

    def start(self) -> FakeEvents:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake.gate.wait(30)
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with fake.arrived:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    fake.received.append(Received(self.path, headers, body))
                    fake.arrived.notify_all()
                self.send_response(fake.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def bodies(self, suffix: str) -> list[Any]:
        return [r.body for r in self.received if r.path.endswith(suffix)]
