"""``flagedge dev``: the Worker's HTTP API served from this machine.

The CPython twin of the Worker's entry point: it adapts HTTP/1.1 requests
(parsed by ``h11``) to ``worker.api.Request`` and answers with the very
``App`` the Worker runs, over a ``PlanCache`` reading the local store. A
background task re-syncs on an interval, like the Worker's cron trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import time
from collections.abc import Awaitable, Callable

import h11

from worker.api import App, Request, Response

__all__ = ["DevServer"]

logger = logging.getLogger("flagedge.dev")

MAX_BODY = 1 << 20
READ_TIMEOUT_S = 30.0  # a client that stops sending mid-request is let go


class DevServer:
    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8787) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    def background(self, job: Awaitable[None]) -> None:
        """The local ``waitUntil``: run ``job`` after the response, keep a reference."""

        async def run() -> None:
            try:
                await job
            except Exception:
                logger.exception("background job failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def every(self, seconds: float, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` now and then every ``seconds`` (the local cron trigger)."""

        async def loop() -> None:
            while True:
                try:
                    await job()
                except Exception:
                    logger.exception("periodic job failed")
                await asyncio.sleep(seconds)

        task = asyncio.ensure_future(loop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        try:
            while await self._exchange(conn, reader, writer):
                conn.start_next_cycle()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read one request, write its response; False when the connection should end."""
        request: h11.Request | None = None
        body = bytearray()
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT_S)
                    except TimeoutError:
                        return False
                    conn.receive_data(data)
                    if not data and conn.their_state is not h11.DONE:
                        return False
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return False
                if isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > MAX_BODY:
                        await self._send(
                            conn,
                            writer,
                            Response.json(413, {"error": f"request body over {MAX_BODY} bytes"}),
                        )
                        return False
                elif isinstance(event, h11.EndOfMessage):
                    break
        except h11.RemoteProtocolError as error:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                await self._send(
                    conn, writer, Response.json(400, {"error": f"malformed HTTP request: {error}"})
                )
            return False

        assert request is not None
        started = time.perf_counter()
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.headers:  # repeated headers join, as fetch joins them
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        api_request = Request.build(
            request.method.decode("ascii"), request.target.decode("latin-1"), headers, bytes(body)
        )
        response = await self.app.handle(api_request, self.background)
        await self._send(conn, writer, response, head=api_request.method == "HEAD")
        target = request.target.decode("latin-1")
        logger.info(
            "%s %s %d %.2fms",
            api_request.method,
            target if len(target) <= 200 else target[:200] + "...",
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _send(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        response: Response,
        *,
        head: bool = False,
    ) -> None:
        headers = [(k, v) for k, v in response.headers.items()]
        headers.append(("content-length", str(len(response.body))))
        try:
            reason = http.HTTPStatus(response.status).phrase.encode()
        except ValueError:
            reason = b""
        data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
        if response.body and not head:
            data += conn.send(h11.Data(data=response.body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()
