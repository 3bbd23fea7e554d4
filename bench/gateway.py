"""What does the gateway cost? HTTP→gRPC through it against direct gRPC and FastAPI.

Measures requests per second and p50/p99 latency of one unary call, ``GetItem``, served by
one Python plugin (``bench.v1.ItemService``, built on :class:`meshkit.server.PluginServer`),
reached three ways, all in one run on this machine:

- **direct gRPC**: ``grpc.aio`` calls straight to the plugin (the floor);
- **gateway**: ``GET /v1/items/{item_id}`` through the real gateway (``python -m gateway``),
  which found the plugin's route through the real registry (``python -m registry``);
- **FastAPI**: a hand-written FastAPI route on uvicorn that calls the same stub over one
  ``grpc.aio`` channel and returns ``JSONResponse(MessageToDict(reply))``;
- **gateway, mTLS**: the gateway path again, in a second mesh (registry, plugin, gateway)
  whose internal hops are mutual TLS, with a CA and certificates made for the run as
  ``plugmesh up`` makes them: the cost of mTLS on the gateway → plugin hop (the front
  door stays plaintext HTTP on loopback in both).

Each server is its own process (registry, plugin, gateway, FastAPI app), as in a real
deployment, and so is each load generator run: one process per measurement, so the
orchestrating process stays idle. On a 2-core machine the load generator, the
gateway (or FastAPI app) and the plugin share the cores; the HTTP load generator is a
small keep-alive HTTP/1.1 client over ``httptools`` on uvloop that costs far less than
the servers it drives. Everything listens on 127.0.0.1; every run is bounded by a request
count and a time limit; every process is stopped at the end.

    make bench-deps
    .venv/bin/python bench/gateway.py [--requests 5000] [--seconds 10] [--rounds 3]

Each cell is the median of ``--rounds`` runs (the targets are taken in turn within a
round). Targets of the gateway issue: at least 1.5x the FastAPI route's throughput and at
least 60 % of direct gRPC's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    json_format,
    message_factory,
    timestamp_pb2,
)

from meshkit.config import MeshConfig
from plugmesh.options.v1 import options_pb2

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "bench.v1"
SERVICE = f"{PACKAGE}.ItemService"
METHOD = f"/{SERVICE}/GetItem"
FILE = "bench/v1/items.proto"
PLUGIN_NAME = "bench-items"
ITEM_PATH = "/v1/items/item-42"
_F = descriptor_pb2.FieldDescriptorProto
_CREATED = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=123_000_000)


# --- the plugin's contract, built here so that nothing is generated for a benchmark ----


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _contract() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=FILE,
        package=PACKAGE,
        syntax="proto3",
        dependency=[
            "google/api/annotations.proto",
            "google/protobuf/timestamp.proto",
            "plugmesh/options/v1/options.proto",
        ],
    )
    request = file.message_type.add(name="GetItemRequest")
    request.field.add(
        name="item_id", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL, json_name="itemId"
    )
    item = file.message_type.add(name="Item")
    for number, (name, kind, label) in enumerate(
        [
            ("item_id", _F.TYPE_STRING, _F.LABEL_OPTIONAL),
            ("name", _F.TYPE_STRING, _F.LABEL_OPTIONAL),
            ("owner_email", _F.TYPE_STRING, _F.LABEL_OPTIONAL),
            ("revision", _F.TYPE_INT64, _F.LABEL_OPTIONAL),
            ("tags", _F.TYPE_STRING, _F.LABEL_REPEATED),
            ("archived", _F.TYPE_BOOL, _F.LABEL_OPTIONAL),
        ],
        start=1,
    ):
        item.field.add(name=name, number=number, type=kind, label=label, json_name=_json_name(name))
    item.field.add(
        name="create_time",
        number=7,
        type=_F.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        label=_F.LABEL_OPTIONAL,
        json_name="createTime",
    )
    service = file.service.add(name="ItemService")
    service.options.Extensions[options_pb2.plugin].version = "1.0.0"
    method = service.method.add(
        name="GetItem", input_type=f".{PACKAGE}.GetItemRequest", output_type=f".{PACKAGE}.Item"
    )
    method.options.idempotency_level = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    method.options.Extensions[options_pb2.access] = options_pb2.ACCESS_PUBLIC
    method.options.Extensions[annotations_pb2.http].get = "/v1/items/{item_id}"
    return file


def _service() -> Any:
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(SERVICE)
    except KeyError:
        pool.Add(_contract())
        return pool.FindServiceByName(SERVICE)


DESCRIPTOR = _service()
GetItemRequest: Any = message_factory.GetMessageClass(
    DESCRIPTOR.methods_by_name["GetItem"].input_type
)
Item: Any = message_factory.GetMessageClass(DESCRIPTOR.methods_by_name["GetItem"].output_type)


class ItemServicer:
    """Answers from memory: the plugin's own work is the same for every path."""

    async def GetItem(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return Item(
            item_id=request.item_id,
            name="A benchmark item",
            owner_email="ada@example.com",
            revision=7,
            tags=["bench", "gateway"],
            create_time=_CREATED,
        )


def _add_servicer(servicer: ItemServicer, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.GetItem,
        request_deserializer=GetItemRequest.FromString,
        response_serializer=Item.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"GetItem": handler}),)
    )


# --- the server processes ---------------------------------------------------------------


def serve_plugin(port: int, registry_address: str) -> None:
    """The plugin: a PluginServer that registers with the registry."""
    from meshkit.server import PluginServer, Servicer, run

    tls = {k: v for k, v in os.environ.items() if k.startswith("PLUGMESH_TLS_")}
    config = MeshConfig.from_env(
        {**tls, "PLUGMESH_REGISTRY_ADDRESS": registry_address, "PLUGMESH_LOG_LEVEL": "WARNING"}
    )
    server = PluginServer(
        PLUGIN_NAME,
        [Servicer(DESCRIPTOR, _add_servicer, ItemServicer())],
        address=f"127.0.0.1:{port}",
        config=config,
    )
    sys.exit(run(server))


def serve_fastapi(port: int, plugin_address: str) -> None:
    """The hand-written alternative: one FastAPI route calling the plugin's stub."""
    from collections.abc import AsyncIterator

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    channel: grpc.aio.Channel | None = None
    stub: grpc.aio.UnaryUnaryMultiCallable[Any, Any] | None = None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal channel, stub
        channel = grpc.aio.insecure_channel(plugin_address)
        stub = channel.unary_unary(
            METHOD,
            request_serializer=GetItemRequest.SerializeToString,
            response_deserializer=Item.FromString,
        )
        yield
        await channel.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/v1/items/{item_id}")
    async def get_item(item_id: str) -> JSONResponse:
        assert stub is not None
        reply = await stub(GetItemRequest(item_id=item_id), timeout=30)
        return JSONResponse(json_format.MessageToDict(reply))

    # uvicorn's defaults as a FastAPI user gets them: httptools, and uvloop when installed.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the load generators (each run in a process of its own) ----------------------------


@dataclass
class Result:
    """What one load run measured."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu_ms: float
    """The load generator's own CPU time per request, all its threads."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @classmethod
    def of(cls, latencies: list[float], errors: int, seconds: float, cpu_seconds: float) -> Result:
        ordered = sorted(latencies)

        def percentile(q: float) -> float:
            if not ordered:
                return 0.0
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

        cpu_ms = cpu_seconds * 1000 / max(len(ordered), 1)
        return cls(len(ordered), errors, seconds, percentile(0.5), percentile(0.99), cpu_ms)


Worker = Callable[[], Awaitable[bool]]


async def _drive(
    open_worker: Callable[[], Awaitable[tuple[Worker, Callable[[], None]]]],
    *,
    concurrency: int,
    requests: int,
    seconds: float,
) -> Result:
    """Run ``requests`` calls over ``concurrency`` workers, for at most ``seconds``."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = loop.time() + seconds

    async def run() -> None:
        nonlocal remaining, errors
        call, close = await open_worker()
        try:
            while remaining > 0 and loop.time() < deadline:
                remaining -= 1
                started = time.perf_counter()
                ok = await call()
                latencies.append(time.perf_counter() - started)
                errors += not ok
        finally:
            close()

    started = time.perf_counter()
    cpu_started = time.process_time()
    await asyncio.gather(*(run() for _ in range(concurrency)))
    cpu = time.process_time() - cpu_started
    return Result.of(latencies, errors, time.perf_counter() - started, cpu)


class _HttpConnection(asyncio.Protocol):
    def __init__(self) -> None:
        import httptools

        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


async def load_http(address: str, concurrency: int, requests: int, seconds: float) -> Result:
    """GET ``ITEM_PATH`` over ``concurrency`` keep-alive HTTP/1.1 connections."""
    loop = asyncio.get_running_loop()
    host, _, port = address.rpartition(":")
    raw = f"GET {ITEM_PATH} HTTP/1.1\r\nHost: {address}\r\nAccept: application/json\r\n\r\n"
    payload = raw.encode()

    async def open_worker() -> tuple[Worker, Callable[[], None]]:
        _, connection = await loop.create_connection(_HttpConnection, host, int(port))

        async def call() -> bool:
            connection.done = loop.create_future()
            assert connection.transport is not None
            connection.transport.write(payload)
            return await connection.done == 200

        def close() -> None:
            if connection.transport is not None:
                connection.transport.close()

        return call, close

    return await _drive(open_worker, concurrency=concurrency, requests=requests, seconds=seconds)


async def load_grpc(address: str, concurrency: int, requests: int, seconds: float) -> Result:
    """Call ``GetItem`` with ``concurrency`` callers sharing one ``grpc.aio`` channel."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub: grpc.aio.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
            METHOD,
            request_serializer=GetItemRequest.SerializeToString,
            response_deserializer=Item.FromString,
        )
        request = GetItemRequest(item_id="item-42")

        async def open_worker() -> tuple[Worker, Callable[[], None]]:
            async def call() -> bool:
                try:
                    await stub(request, timeout=30)
                except grpc.aio.AioRpcError:
                    return False
                return True

            return call, lambda: None

        return await _drive(
            open_worker, concurrency=concurrency, requests=requests, seconds=seconds
        )


def run_load(kind: str, address: str, concurrency: int, requests: int, seconds: float) -> None:
    """The load generator process: one run, its result as JSON on stdout."""
    if kind == "http":
        import uvloop

        result = uvloop.run(load_http(address, concurrency, requests, seconds))
    else:
        # grpc.aio supports the default asyncio loop only.
        result = asyncio.run(load_grpc(address, concurrency, requests, seconds))
    print(json.dumps(asdict(result)))


# --- orchestration ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One way of reaching the plugin."""

    name: str
    kind: str  # "http" or "grpc"
    address: str
    server: str  # the process between the load generator and the plugin, or ""
    plugin: str = "plugin"  # the plugin process it reaches


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """The server processes of one run; all stopped by :meth:`stop_all`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                args, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
            )
        self.running.append((name, process))
        return process

    def pid(self, name: str) -> int:
        return next(process.pid for named, process in self.running if named == name)

    def check(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                log = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

    def stop_all(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in reversed(self.running):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(what: str, ready: Callable[[], bool], processes: Processes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        processes.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} was not ready within {timeout:.0f} s")
        time.sleep(0.1)


def _answers_http(address: str) -> Callable[[], bool]:
    def check() -> bool:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2) as conn:
                conn.sendall(f"GET {ITEM_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                return conn.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            return False

    return check


def _listening(address: str) -> Callable[[], bool]:
    def check() -> bool:
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            return False

    return check


def _mutual_tls_mesh(logs: Path, processes: Processes, quiet: dict[str, str]) -> str:
    """A second registry, plugin and gateway whose hops are mutual TLS; the gateway's
    HTTP address."""
    from launcher.certs import EXTRA_IDENTITIES, CertificateAuthority

    directory = logs / "tls"
    authority = CertificateAuthority.open(directory)

    def tls_env(service: str) -> dict[str, str]:
        files = authority.write_member(
            directory, service, extra_services=EXTRA_IDENTITIES.get(service, ())
        )
        return {
            "PLUGMESH_TLS_CERT_FILE": str(files.cert_file),
            "PLUGMESH_TLS_KEY_FILE": str(files.key_file),
            "PLUGMESH_TLS_CA_FILE": str(files.ca_file),
        }

    python = sys.executable
    registry = f"127.0.0.1:{_free_port()}"
    plugin = f"127.0.0.1:{_free_port()}"
    gateway_http = f"127.0.0.1:{_free_port()}"
    processes.start(
        "registry-mtls",
        [python, "-m", "registry"],
        {
            **quiet,
            **tls_env("registry"),
            "PLUGMESH_REGISTRY_ADDRESS": registry,
            "PLUGMESH_DATA_DIR": str(logs / "data-mtls"),
        },
    )
    _wait("the mTLS registry", _listening(registry), processes, 30)
    this = [python, str(Path(__file__).resolve())]
    processes.start(
        "plugin-mtls",
        [*this, "--serve-plugin", plugin, registry],
        {**quiet, **tls_env(PLUGIN_NAME)},
    )
    processes.start(
        "gateway-mtls",
        [python, "-m", "gateway"],
        {
            **quiet,
            **tls_env("gateway"),
            "PLUGMESH_DATA_DIR": str(logs / "data-mtls"),
            "PLUGMESH_REGISTRY_ADDRESS": registry,
            "PLUGMESH_GATEWAY_HTTP_ADDRESS": gateway_http,
            "PLUGMESH_GATEWAY_GRPC_ADDRESS": f"127.0.0.1:{_free_port()}",
            "PLUGMESH_GATEWAY_MCP_SERVERS_ADDRESS": f"127.0.0.1:{_free_port()}",
        },
    )
    _wait("the plugin through the mTLS gateway", _answers_http(gateway_http), processes, 60)
    return gateway_http


@contextlib.contextmanager
def mesh(logs: Path) -> Iterator[tuple[list[Target], Processes]]:
    """Start registry, plugin, gateway and the FastAPI app; yield the three targets."""
    python = sys.executable
    processes = Processes(logs)
    registry = f"127.0.0.1:{_free_port()}"
    plugin = f"127.0.0.1:{_free_port()}"
    gateway_http = f"127.0.0.1:{_free_port()}"
    gateway_grpc = f"127.0.0.1:{_free_port()}"
    fastapi = f"127.0.0.1:{_free_port()}"
    quiet = {"PLUGMESH_LOG_LEVEL": "WARNING", "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1"}
    try:
        processes.start(
            "registry",
            [python, "-m", "registry"],
            {
                **quiet,
                "PLUGMESH_REGISTRY_ADDRESS": registry,
                "PLUGMESH_DATA_DIR": str(logs / "data"),
            },
        )
        _wait("the registry", _listening(registry), processes, 30)
        this = [python, str(Path(__file__).resolve())]
        processes.start("plugin", [*this, "--serve-plugin", plugin, registry], quiet)
        processes.start(
            "gateway",
            [python, "-m", "gateway"],
            {
                **quiet,
                "PLUGMESH_REGISTRY_ADDRESS": registry,
                "PLUGMESH_GATEWAY_HTTP_ADDRESS": gateway_http,
                "PLUGMESH_GATEWAY_GRPC_ADDRESS": gateway_grpc,
            },
        )
        processes.start("fastapi", [*this, "--serve-fastapi", fastapi, plugin], quiet)
        _wait("the plugin through the gateway", _answers_http(gateway_http), processes, 60)
        _wait("the FastAPI route", _answers_http(fastapi), processes, 30)
        mtls_http = _mutual_tls_mesh(logs, processes, quiet)
        targets = [
            Target("direct grpc.aio", "grpc", plugin, ""),
            Target("gateway (HTTP→gRPC)", "http", gateway_http, "gateway"),
            Target("FastAPI + uvicorn route", "http", fastapi, "fastapi"),
            Target("gateway, mTLS to plugin", "http", mtls_http, "gateway-mtls", "plugin-mtls"),
        ]
        yield targets, processes
    finally:
        processes.stop_all()


@dataclass
class Measured:
    """A load run and the CPU time the servers spent on it, in ms per request."""

    result: Result
    server_cpu_ms: float
    plugin_cpu_ms: float


def measure(
    target: Target, concurrency: int, requests: int, seconds: float, processes: Processes
) -> Measured:
    """One load run in a process of its own."""
    server = processes.pid(target.server) if target.server else None
    plugin = processes.pid(target.plugin)
    server_before = cpu_seconds(server) if server else 0.0
    plugin_before = cpu_seconds(plugin)
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--load",
            target.kind,
            target.address,
            str(concurrency),
            str(requests),
            str(seconds),
        ],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=seconds + 60,
    )
    result = Result(**json.loads(done.stdout))
    count = max(result.requests, 1)
    return Measured(
        result,
        (cpu_seconds(server) - server_before) * 1000 / count if server else 0.0,
        (cpu_seconds(plugin) - plugin_before) * 1000 / count,
    )


def profile(pid: int, output: Path, run: Callable[[], object]) -> None:
    """Sample process ``pid`` with py-spy while ``run`` runs; collapsed stacks to ``output``."""
    py_spy = Path(sys.executable).parent / "py-spy"
    command = [str(py_spy), "record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    sampler = subprocess.Popen(
        [*command, "--output", str(output), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)  # attached
        run()
    finally:
        sampler.send_signal(signal.SIGINT)
        try:
            sampler.wait(30)
        except subprocess.TimeoutExpired:
            sampler.kill()
            sampler.wait()


def bench(requests: int, seconds: float, rounds: int, profile_to: Path | None) -> None:
    with tempfile.TemporaryDirectory(prefix="plugmesh-bench-") as temporary:
        logs = Path(temporary)
        with mesh(logs) as (targets, processes):
            for target in targets:  # warm-up: connections, caches, lazy imports
                measure(target, 8, min(requests, 1000), 5, processes)
            cells: dict[tuple[str, int], list[Measured]] = {}
            for concurrency in (1, 32):
                for _ in range(rounds):
                    for target in targets:
                        measured = measure(target, concurrency, requests, seconds, processes)
                        cells.setdefault((target.name, concurrency), []).append(measured)
            _report(targets, cells, requests, seconds, rounds)
            if profile_to is not None:
                gateway = targets[1]
                pid = processes.pid("gateway")
                profile(pid, profile_to, lambda: measure(gateway, 32, requests, seconds, processes))
                print(f"py-spy samples of the gateway at c=32: {profile_to}")


def _median(runs: list[Measured]) -> Measured:
    ordered = sorted(runs, key=lambda run: run.result.rps)
    return ordered[len(ordered) // 2]


def _report(
    targets: list[Target],
    cells: dict[tuple[str, int], list[Measured]],
    requests: int,
    seconds: float,
    rounds: int,
) -> None:
    print(
        f"{os.cpu_count()} cores, loopback; {requests} requests or {seconds:g} s per run, "
        f"median of {rounds} run(s); GET {ITEM_PATH}"
    )
    print(
        f"{'path':26} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'CPU ms/req: client':>18} {'server':>7} {'plugin':>7}"
    )
    for concurrency in (1, 32):
        for target in targets:
            runs = cells[(target.name, concurrency)]
            median = _median(runs)
            result = median.result
            errors = sum(run.result.errors for run in runs)
            server = f"{median.server_cpu_ms:.3f}" if target.server else "-"
            print(
                f"{target.name:26} {concurrency:>4} {result.rps:>8.0f} {result.p50_ms:>8.2f}"
                f" {result.p99_ms:>8.2f} {errors:>6} {result.client_cpu_ms:>18.3f} {server:>7}"
                f" {median.plugin_cpu_ms:>7.3f}"
            )
    direct, gateway, fastapi, gateway_mtls = (target.name for target in targets)
    for concurrency in (1, 32):
        plain = _median(cells[(gateway, concurrency)]).result
        mtls = _median(cells[(gateway_mtls, concurrency)]).result
        print(
            f"c={concurrency}: mTLS on the gateway → plugin hop: {mtls.rps / plain.rps:.0%} of"
            f" the plaintext gateway's req/s, p50 {mtls.p50_ms - plain.p50_ms:+.2f} ms"
        )
    for concurrency in (1, 32):
        via_gateway = _median(cells[(gateway, concurrency)]).result.rps
        versus_fastapi = via_gateway / _median(cells[(fastapi, concurrency)]).result.rps
        versus_direct = via_gateway / _median(cells[(direct, concurrency)]).result.rps
        print(
            f"c={concurrency}: gateway = {versus_fastapi:.2f}x FastAPI "
            f"(target >= 1.5x: {'met' if versus_fastapi >= 1.5 else 'NOT met'}), "
            f"{versus_direct:.0%} of direct gRPC "
            f"(target >= 60%: {'met' if versus_direct >= 0.6 else 'NOT met'})"
        )
    # The gateway's upstream call is the direct client's own grpc.aio call, so the gateway
    # path costs what the direct path costs plus an HTTP hop: direct gRPC is its ceiling.
    for concurrency in (1, 32):
        fastapi_rps = _median(cells[(fastapi, concurrency)]).result.rps
        direct_rps = _median(cells[(direct, concurrency)]).result.rps
        print(
            f"c={concurrency}: 1.5x FastAPI = {1.5 * fastapi_rps:.0f} req/s "
            f"= {1.5 * fastapi_rps / direct_rps:.0%} of direct gRPC, the ceiling of any proxy "
            "that makes the direct client's call"
        )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=5000, help="per run (default 5000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="limit per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell (default 3)")
    parser.add_argument(
        "--profile", type=Path, help="also sample the gateway with py-spy at c=32 (raw stacks)"
    )
    parser.add_argument("--serve-plugin", nargs=2, metavar=("ADDRESS", "REGISTRY"))
    parser.add_argument("--serve-fastapi", nargs=2, metavar=("ADDRESS", "PLUGIN"))
    parser.add_argument("--load", nargs=5, metavar=("KIND", "ADDRESS", "C", "N", "SECONDS"))
    args = parser.parse_args()
    if args.serve_plugin:
        address, registry = args.serve_plugin
        serve_plugin(int(address.rpartition(":")[2]), registry)
    elif args.serve_fastapi:
        address, plugin = args.serve_fastapi
        serve_fastapi(int(address.rpartition(":")[2]), plugin)
    elif args.load:
        kind, address, concurrency, requests, seconds = args.load
        run_load(kind, address, int(concurrency), int(requests), float(seconds))
    else:
        bench(args.requests, args.seconds, args.rounds, args.profile)


if __name__ == "__main__":
    main()
