"""Which HTTP server should the gateway run on? A measurement, not a test.

Runs the same small transcoded-style handler (match ``/v1/users/{user_id}``, build the
request message from the path and query with ``json_format``, serialize it, parse a
response message and render it as proto3 JSON) on each candidate server, one process
each with one worker, and drives it from this process with a keep-alive HTTP/1.1 load
generator on loopback (``httptools`` parses the responses). Every run is bounded by a
request count and a time limit, and every server process is stopped at the end.

    make bench-deps
    .venv/bin/python bench/http_servers.py [--requests 20000] [--seconds 20]

Candidates: uvicorn (httptools; uvloop, and the plain asyncio loop the gateway runs on)
and granian (standalone, and embedded in an asyncio loop) running the same plain ASGI
app, aiohttp with a native handler, hypercorn. The last rows are the gateway's own app
(``gateway.http``, with an in-memory upstream) on uvicorn and on embedded granian: what
the choice is worth once the app's own work is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httptools
from google.protobuf import json_format, timestamp_pb2

from plugmesh.users.v1 import users_pb2

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_ROUTE = re.compile(r"^/v1/users/(?P<user_id>[^/]+)$")
_CREATED = timestamp_pb2.Timestamp(seconds=1_700_000_000)


def handle(path: str, query: str) -> tuple[int, bytes]:
    """The shared handler: path and query in, status and JSON body out."""
    match = _ROUTE.match(path)
    if match is None:
        return 404, b'{"code":5,"message":"no route","details":[]}'
    fields: dict[str, Any] = dict(parse_qsl(query))
    fields["userId"] = match["user_id"]  # the path wins over the query
    request = json_format.ParseDict(fields, users_pb2.GetUserRequest())
    wire = request.SerializeToString()
    decoded = users_pb2.GetUserRequest.FromString(wire)
    response = users_pb2.GetUserResponse(
        user=users_pb2.User(
            user_id=decoded.user_id,
            email=f"{decoded.user_id}@example.com",
            display_name="Ada",
            role=users_pb2.ROLE_ADMIN,
            create_time=_CREATED,
            revision=7,
        )
    )
    body = json_format.MessageToJson(
        response, always_print_fields_with_no_presence=True, indent=None
    ).encode()
    return 200, body


# --- the candidates -------------------------------------------------------------------


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """The plain ASGI app that uvicorn, granian and hypercorn run."""
    if scope["type"] != "http":
        return
    status, body = handle(scope["path"], scope["query_string"].decode("latin-1"))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve_uvicorn(sock: socket.socket) -> None:
    import uvicorn

    host, port = sock.getsockname()
    sock.close()
    config = uvicorn.Config(
        asgi_app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
    )
    uvicorn.Server(config).run()


def serve_granian(sock: socket.socket) -> None:
    from granian.constants import Interfaces
    from granian.server import Server

    host, port = sock.getsockname()
    sock.close()  # granian binds its own socket; the port stays free for it
    Server(
        "http_servers:asgi_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        runtime_threads=1,
        log_enabled=False,
    ).serve()


def serve_uvicorn_embedded(sock: socket.socket) -> None:
    # As the gateway runs it: inside an asyncio loop it owns, next to its grpc.aio channels.
    import uvicorn

    host, port = sock.getsockname()
    sock.close()
    config = uvicorn.Config(
        asgi_app, host=host, port=port, http="httptools", lifespan="off", log_level="warning"
    )
    asyncio.run(uvicorn.Server(config).serve())


def serve_granian_embedded(sock: socket.socket) -> None:
    # granian's (experimental) embedded server: Rust I/O threads feeding an asyncio loop.
    from granian.constants import Interfaces
    from granian.server.embed import Server

    host, port = sock.getsockname()
    sock.close()
    server = Server(asgi_app, address=host, port=port, interface=Interfaces.ASGINL)
    asyncio.run(server.serve())


def serve_aiohttp(sock: socket.socket) -> None:
    from aiohttp import web

    async def view(request: web.Request) -> web.Response:
        status, body = handle(request.path, request.query_string)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", view)
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


def serve_hypercorn(sock: socket.socket) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    host, port = sock.getsockname()
    sock.close()
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    asyncio.run(serve(asgi_app, config))  # type: ignore[arg-type]  # hypercorn's ASGI types


def serve_gateway_app(sock: socket.socket) -> None:
    # The gateway's real ASGI app (route table, transcoding, JSON rendering, metrics) on
    # the server it embeds, with an in-memory upstream instead of a plugin: what the
    # HTTP side itself costs per request.
    from gateway.http import HttpServer, HttpSettings, build_app

    host, port = sock.getsockname()
    sock.close()
    app = build_app(_Catalog(), _Upstream(), HttpSettings())  # type: ignore[arg-type]  # fakes

    async def run() -> None:
        server = HttpServer(app, f"{host}:{port}")
        await server.start()
        await asyncio.Event().wait()  # until the bench terminates the process

    asyncio.run(run())


def serve_gateway_app_granian(sock: socket.socket) -> None:
    # The same, on granian's embedded server, to see what the server is worth there.
    from granian.constants import Interfaces
    from granian.server.embed import Server

    from gateway.http import HttpSettings, build_app

    host, port = sock.getsockname()
    sock.close()
    app = build_app(_Catalog(), _Upstream(), HttpSettings())  # type: ignore[arg-type]  # fakes
    server = Server(app, address=host, port=port, interface=Interfaces.ASGINL)
    asyncio.run(server.serve())


@dataclass(frozen=True)
class _Method:
    descriptor: Any
    comments: Any = field(default_factory=dict)


class _Snapshot:
    schema_generation = 1

    def methods(self) -> list[_Method]:
        service = users_pb2.DESCRIPTOR.services_by_name["UserService"]
        return [_Method(service.methods_by_name["GetUser"])]


class _Catalog:
    ready = True
    snapshot = _Snapshot()

    def subscribe(self, subscriber: Any) -> Callable[[], None]:
        return lambda: None


@dataclass(frozen=True)
class _Reply:
    body: bytes
    initial_metadata: tuple[tuple[str, str], ...] = ()
    trailing_metadata: tuple[tuple[str, str], ...] = ()


class _Upstream:
    async def unary(self, method: Any, request: bytes, **_: Any) -> _Reply:
        decoded = users_pb2.GetUserRequest.FromString(request)
        response = users_pb2.GetUserResponse(
            user=users_pb2.User(
                user_id=decoded.user_id,
                email=f"{decoded.user_id}@example.com",
                display_name="Ada",
                role=users_pb2.ROLE_ADMIN,
                create_time=_CREATED,
                revision=7,
            )
        )
        return _Reply(response.SerializeToString())


SERVERS: dict[str, tuple[str, Callable[[socket.socket], None]]] = {
    "uvicorn+httptools+uvloop (ASGI)": ("uvicorn", serve_uvicorn),
    "uvicorn+httptools, asyncio loop": ("uvicorn", serve_uvicorn_embedded),
    "granian (ASGI)": ("granian", serve_granian),
    "granian embedded, asyncio loop": ("granian", serve_granian_embedded),
    "aiohttp (native)": ("aiohttp", serve_aiohttp),
    "hypercorn (ASGI)": ("hypercorn", serve_hypercorn),
    "gateway.http app on uvicorn": ("uvicorn", serve_gateway_app),
    "gateway.http app on granian embedded": ("granian", serve_gateway_app_granian),
}


# --- the load generator ---------------------------------------------------------------


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.status = 0
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


@dataclass
class Result:
    """What one load run measured."""

    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def load(
    port: int,
    *,
    concurrency: int,
    requests: int,
    seconds: float,
    path: str = "/v1/users/u-42",
) -> Result:
    """Send ``requests`` GETs of ``path`` over ``concurrency`` keep-alive connections, for
    at most ``seconds``."""
    loop = asyncio.get_running_loop()
    raw = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n").encode()
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = loop.time() + seconds

    async def connect() -> _Connection:
        _, conn = await loop.create_connection(_Connection, "127.0.0.1", port)
        return conn

    async def worker() -> None:
        nonlocal remaining, errors
        conn = await connect()
        try:
            while remaining > 0 and loop.time() < deadline:
                if conn.transport is None or conn.transport.is_closing():
                    conn = await connect()  # the server ended keep-alive (hypercorn: 1000)
                remaining -= 1
                conn.done = loop.create_future()
                started = time.perf_counter()
                conn.transport.write(raw)  # type: ignore[union-attr]  # set by connect()
                try:
                    status = await conn.done
                except ConnectionError:
                    remaining += 1  # closed under the request: send it again
                    conn = await connect()
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
        finally:
            if conn.transport is not None:
                conn.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(len(latencies), errors, time.perf_counter() - started, latencies)


def _start(name: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", name, "--port", str(port)],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    return process, port


async def _wait_ready(port: int, timeout_seconds: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds
    while True:
        try:
            result = await load(port, concurrency=1, requests=1, seconds=2)
            if result.requests == 1 and result.errors == 0:
                return
        except OSError:
            pass
        if loop.time() > deadline:
            raise RuntimeError(f"server on port {port} did not answer")
        await asyncio.sleep(0.1)


async def bench(names: list[str], requests: int, seconds: float) -> None:
    print(f"{'server':38} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for name in names:
        process, port = _start(name)
        try:
            await _wait_ready(port)
            await load(port, concurrency=8, requests=min(2000, requests), seconds=5)  # warm-up
            for concurrency in (1, 32):
                result = await load(
                    port, concurrency=concurrency, requests=requests, seconds=seconds
                )
                print(
                    f"{name:38} {concurrency:>4} {result.rps:>9.0f} {result.percentile(0.5):>8.2f}"
                    f" {result.percentile(0.99):>8.2f} {result.errors:>6}",
                    flush=True,
                )
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per run (default 20000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="limit per run (default 20)")
    parser.add_argument("--only", help="run only the servers whose name contains this")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", args.port))
        sock.listen(1024)
        sock.set_inheritable(True)
        SERVERS[args.serve][1](sock)
        return
    names = [
        name
        for name, (module, _) in SERVERS.items()
        if importlib.util.find_spec(module) and (args.only or "") in name
    ]
    for name, (module, _) in SERVERS.items():
        if name not in names and (args.only or "") in name:
            print(f"(skipping {name}: {module} is not installed)")
    import uvloop

    uvloop.run(bench(names, args.requests, args.seconds))


if __name__ == "__main__":
    main()
