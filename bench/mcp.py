"""What does plugmesh add to an MCP tool call? ``tools/call`` direct and through the gateway.

Calls per second, p50/p99 latency and each process's CPU time per call of ``tools/call`` of
``echo`` on one upstream MCP server (the SDK's ``MCPServer`` over Streamable HTTP, stateless,
JSON answers, a process of its own), reached two ways in one run: **direct**, to the
upstream's ``/mcp``; **through plugmesh**, as ``bench__echo`` at ``/mcp`` of the real gateway
in the mesh ``plugmesh up`` starts for the run (free ports, a temporary data dir), the
upstream added with ``POST /v1/mcp/servers``, the token a machine user's that may call
``bench/echo`` only (the check is live: its ``bench__secret`` must be refused).

The load generator is the cheapest honest MCP client: raw 2026-07-28 stateless
``tools/call`` requests over a keep-alive HTTP/1.1 connection per concurrent caller
(httptools on uvloop, as ``bench/gateway.py``), each answer checked to be a success that
echoed the text; a process of its own per run. CPU columns: each process's user+system time
(``/proc/<pid>/stat``) from before a run until the processes are quiet again after it (work
the calls leave behind, such as events, counts), per call. Loopback only; every run is
bounded by a call count and a time limit; every process is stopped at the end.

    make bench-deps
    .venv/bin/python bench/mcp.py [--requests 5000] [--seconds 10] [--rounds 3]

Each cell is the median of ``--rounds`` runs (the targets taken in turn within a round).
Targets of issue 15: through plugmesh at least 50 % of direct throughput at c=16, at most
2 ms added to p50 at c=1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

THIS = str(Path(__file__).resolve())
ROOT = Path(THIS).parents[1]
# Run as a script, this file's folder comes first on sys.path, where this file would stand
# in for the ``mcp`` SDK: the repository's root takes the folder's place.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import gateway as base  # noqa: E402  # its load loop and process handling

SERVER = "bench"  # the upstream's name in plugmesh
WITH_NOOP = "+ no-op hook"  # through plugmesh, with one no-op pre- and post-hook
WITH_GUARD = "+ secrets guard"  # through plugmesh, with the secrets guard's hooks
TEXT = "plugmesh"  # what each call echoes
TOKEN_VAR = "BENCH_MCP_TOKEN"  # how the load generator gets its token: never in argv
READY_LINE = "Ctrl-C stops the mesh"  # what `plugmesh up` prints once everything serves
MESH = (
    "gateway",
    "nats",
    "audit",
    "users",
    "machine-users",
    "secrets-guard",
    "tool-pins",
    "registry",
)
NOOP_HOOK = "noop-hook"  # a hook plugin that allows every call and result
HOOK_PLUGIN = "tests.gateway.mcp_hooks.hook_plugin"  # the tests' scripted hook plugin
HOOKS = ("secrets-guard", "tool-pins", NOOP_HOOK)
TOKENS = re.compile(r"pmk_\S+")
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "plugmesh-bench", "version": "0"},
}


def serve_upstream(port: int) -> None:
    """The upstream: ``echo``, and ``secret``, which the bench's caller may not call."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("bench-upstream", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def secret() -> str:
        """Not for the bench's caller."""
        return "secret"

    app = server.streamable_http_app(host="127.0.0.1", json_response=True, stateless_http=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the load generator (a process of its own per run) ----------------------------------


def call_body(tool: str) -> bytes:
    """A 2026-07-28 ``tools/call`` of ``tool`` echoing ``TEXT``."""
    params = {"name": tool, "arguments": {"text": TEXT}, "_meta": META}
    return json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    ).encode()


def call_headers(tool: str, token: str) -> dict[str, str]:
    """Its headers (the stateless revision routes and checks a request by them)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    return headers | ({"Authorization": f"Bearer {token}"} if token else {})


def answer(body: bytes) -> dict[str, Any]:
    """The JSON-RPC message of an answer: a JSON body, or an event stream's one message."""
    if not body.lstrip().startswith(b"{"):
        body = next(line[5:] for line in body.splitlines() if line.startswith(b"data:"))
    message: dict[str, Any] = json.loads(body)
    return message


def echoed(status: int, body: bytes) -> bool:
    """Whether an answer is a successful call that echoed ``TEXT``."""
    try:
        result = answer(body)["result"]
        return status == 200 and not result.get("isError") and result["content"][0]["text"] == TEXT
    except (StopIteration, ValueError, KeyError, IndexError, TypeError):
        return False


class _Exchange(asyncio.Protocol):
    """One keep-alive connection; ``done`` gets each answer's status and body."""

    def __init__(self) -> None:
        import httptools

        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[tuple[int, bytes]] | None = None
        self.body = bytearray()
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result((self.parser.get_status_code(), bytes(self.body)))
        self.body.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed"))


async def load(
    address: str, tool: str, concurrency: int, requests: int, seconds: float
) -> base.Result:
    """Call ``tool`` over ``concurrency`` keep-alive connections."""
    loop = asyncio.get_running_loop()
    host, _, port = address.rpartition(":")
    body = call_body(tool)
    head = ["POST /mcp HTTP/1.1", f"Host: {address}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in call_headers(tool, os.environ[TOKEN_VAR]).items()]
    payload = ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def open_worker() -> tuple[base.Worker, Callable[[], None]]:
        _, exchange = await loop.create_connection(_Exchange, host, int(port))

        async def call() -> bool:
            exchange.done = loop.create_future()
            assert exchange.transport is not None
            exchange.transport.write(payload)
            return echoed(*await exchange.done)

        def close() -> None:
            if exchange.transport is not None:
                exchange.transport.close()

        return call, close

    return await base._drive(
        open_worker, concurrency=concurrency, requests=requests, seconds=seconds
    )


# --- the mesh and the upstream ----------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One way of reaching the upstream's ``echo``."""

    name: str
    address: str  # of the HTTP server whose /mcp it calls
    tool: str
    token: str
    hooks: tuple[str, ...] = ()  # the hooks that run (the others are set DISABLED)


@dataclass(frozen=True)
class Stand:
    """What a run measures: the two targets, and the processes to watch by name."""

    direct: Target
    plugmesh: Target
    pids: dict[str, int]  # the upstream, each of MESH and the no-op hook
    gateway: str
    admin: str
    processes: base.Processes


class _Redacting(base.Processes):
    """Shows a failed process's log without tokens (``plugmesh up`` prints the admin's)."""

    def check(self) -> None:
        try:
            super().check()
        except RuntimeError as exc:
            raise RuntimeError(TOKENS.sub("pmk_…", str(exc))) from None


def post(
    address: str, path: str, headers: dict[str, str], body: bytes | None, method: str = ""
) -> tuple[int, bytes]:
    """One HTTP request, blocking (a POST, or a GET without a body)."""
    host, _, port = address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method or ("GET" if body is None else "POST"), path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def api(address: str, path: str, token: str, body: Any = None, method: str = "") -> dict[str, Any]:
    """One call of the gateway's HTTP API, which must succeed."""
    data = None if body is None else json.dumps(body).encode()
    status, answered = post(address, path, {"Authorization": f"Bearer {token}"}, data, method)
    assert status == 200, f"{path}: {status} {answered[:500]!r}"
    result: dict[str, Any] = json.loads(answered)
    return result


def call_once(target: Target, tool: str | None = None) -> tuple[int, bytes]:
    """One ``tools/call`` of ``target`` (or of another ``tool`` there)."""
    tool = tool or target.tool
    return post(target.address, "/mcp", call_headers(tool, target.token), call_body(tool))


def _answers(target: Target) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return echoed(*call_once(target))
        except OSError:
            return False

    return check


@contextlib.contextmanager
def stand(logs: Path) -> Iterator[Stand]:
    """Start the upstream and ``plugmesh up``; add the upstream and a machine user."""
    from launcher.processes import PROCESSES

    for name in [name for name in os.environ if name.startswith("PLUGMESH_")]:
        del os.environ[name]  # the mesh is configured here alone
    data = logs / "data"
    env = {"PLUGMESH_DATA_DIR": str(data), "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1"}
    for var in ("PLUGMESH_NATS_ADDRESS", *(v for p in PROCESSES for v in p.address_vars)):
        env[var] = "127.0.0.1:0"  # a free port
    processes = _Redacting(logs)
    upstream = f"127.0.0.1:{base._free_port()}"
    children: dict[str, Any] = {}
    try:
        processes.start("upstream", [sys.executable, THIS, "--serve-upstream", upstream], {})
        processes.start("up", [sys.executable, "-m", "launcher.cli", "up"], env)
        direct = Target("direct", upstream, "echo", "")
        base._wait("the upstream", _answers(direct), processes, 30)
        printed = logs / "up.log"
        base._wait("plugmesh up", lambda: READY_LINE in printed.read_text(), processes, 120)
        state = json.loads((data / "up.json").read_text())
        children = state["children"]
        gateway = state["addresses"]["PLUGMESH_GATEWAY_HTTP_ADDRESS"]
        admin = (data / "admin.token").read_text().strip()
        rules = [{"effect": "EFFECT_ALLOW", "pattern": f"{SERVER}/echo"}]
        caller = api(
            gateway, "/v1/machine-users", admin, {"name": "bench", "permissions": {"rules": rules}}
        )
        server = {"name": SERVER, "streamableHttp": {"url": f"http://{upstream}/mcp"}}
        api(gateway, "/v1/mcp/servers", admin, server)
        plugmesh = Target("through plugmesh", gateway, f"{SERVER}__echo", caller["token"])
        base._wait("echo through plugmesh", _answers(plugmesh), processes, 60)
        secret = f"{SERVER}__secret"  # there (the admin may call it), but not for the caller
        assert "result" in answer(call_once(replace(plugmesh, token=admin), secret)[1])
        refused = answer(call_once(plugmesh, secret)[1])
        assert refused["error"]["message"] == f"Unknown tool: {secret}", refused
        hook_env = {
            "PLUGMESH_REGISTRY_ADDRESS": state["addresses"]["PLUGMESH_REGISTRY_ADDRESS"],
            "PLUGMESH_REGISTRATION_SECRET": (data / "registration.secret").read_text().strip(),
        }
        noop = {
            "name": NOOP_HOOK,
            "hook": {"phases": ["HOOK_PHASE_PRE_TOOL_CALL", "HOOK_PHASE_POST_TOOL_CALL"]},
        }
        processes.start(NOOP_HOOK, [sys.executable, "-m", HOOK_PLUGIN, json.dumps(noop)], hook_env)
        base._wait("the no-op hook", lambda: _serving(gateway, admin, NOOP_HOOK), processes, 60)
        pids = {"upstream": processes.pid("upstream")} | {name: children[name] for name in MESH}
        pids[NOOP_HOOK] = processes.pid(NOOP_HOOK)
        yield Stand(direct, plugmesh, pids, gateway, admin, processes)
    finally:
        processes.stop_all()
        for pid in children.values():  # what a killed `plugmesh up` left behind
            if pid is not None and Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)


def _serving(gateway: str, admin: str, hook: str) -> bool:
    hooks = api(gateway, "/v1/mcp/hooks", admin).get("hooks", [])
    return any(h["name"] == hook and h.get("servingInstances", 0) > 0 for h in hooks)


def use_hooks(setup: Stand, target: Target) -> None:
    """Let exactly the target's hooks run: the others set DISABLED, its own cleared."""
    for hook in HOOKS:
        mode = "HOOK_MODE_UNSPECIFIED" if hook in target.hooks else "HOOK_MODE_DISABLED"
        api(setup.gateway, f"/v1/mcp/hooks/{hook}", setup.admin, {"modeOverride": mode}, "PATCH")


# --- measuring --------------------------------------------------------------------------


@dataclass
class Measured:
    """A load run, each watched process's CPU time per call in ms, and the mean round trip
    of the no-op hook per phase as the gateway timed it, in ms (when it ran)."""

    result: base.Result
    cpu_ms: dict[str, float]
    hook_ms: dict[str, float]


def quiet(pids: dict[str, int], timeout_seconds: float = 30.0) -> None:
    """Wait until the processes use < 10 % of a core for 0.5 s (idle: ~5 %), or time out."""
    deadline = time.monotonic() + timeout_seconds
    last = sum(map(base.cpu_seconds, pids.values()))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sum(map(base.cpu_seconds, pids.values()))
        if now - last < 0.05:
            return
        last = now


def measure(
    target: Target, concurrency: int, requests: int, seconds: float, setup: Stand
) -> Measured:
    """One load run in a process of its own, and the CPU the watched processes spent on it."""
    use_hooks(setup, target)
    quiet(setup.pids)
    before = {name: base.cpu_seconds(pid) for name, pid in setup.pids.items()}
    hooks_before = hook_seconds(setup.gateway)
    arguments = [target.address, target.tool, concurrency, requests, seconds]
    done = subprocess.run(
        [sys.executable, THIS, "--load", *map(str, arguments)],
        cwd=ROOT,
        env={**os.environ, TOKEN_VAR: target.token},
        capture_output=True,
        check=True,
        timeout=seconds + 60,
    )
    result = base.Result(**json.loads(done.stdout))
    quiet(setup.pids)
    setup.processes.check()
    calls = max(result.requests, 1)
    spent = {name: base.cpu_seconds(pid) - before[name] for name, pid in setup.pids.items()}
    hooks_after = hook_seconds(setup.gateway)
    hook_ms = {
        phase: (total - hooks_before[phase][0]) * 1000 / (count - hooks_before[phase][1])
        for phase, (total, count) in hooks_after.items()
        if count > hooks_before.get(phase, (0.0, count))[1]
    }
    return Measured(result, {name: cpu * 1000 / calls for name, cpu in spent.items()}, hook_ms)


_HOOK_SECONDS = re.compile(
    r'^plugmesh_mcp_hook_duration_seconds_(sum|count)\{hook="'
    + NOOP_HOOK
    + r'",phase="(\w+)"\} (\S+)$',
    re.MULTILINE,
)


def hook_seconds(gateway: str) -> dict[str, tuple[float, float]]:
    """The gateway's time in the no-op hook's calls so far, per phase: (seconds, calls)."""
    status, text = post(gateway, "/metrics", {}, None)
    assert status == 200, f"/metrics: {status}"
    found: dict[str, dict[str, float]] = {}
    for kind, phase, value in _HOOK_SECONDS.findall(text.decode()):
        found.setdefault(phase, {})[kind] = float(value)
    return {phase: (values["sum"], values["count"]) for phase, values in found.items()}


def audit_log(setup: Stand) -> tuple[int, str]:
    """How many entries the audit log holds (its newest's sequence), and the newest action."""
    entries = api(setup.gateway, "/v1/audit/entries?pageSize=1", setup.admin).get("entries")
    newest = (entries or [{"sequence": "0", "action": "-"}])[0]
    return int(newest["sequence"]), newest["action"]


def bench(requests: int, seconds: float, rounds: int, profile_to: Path | None) -> None:
    load_before = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="plugmesh-bench-") as temporary,
        stand(Path(temporary)) as setup,
    ):
        targets = [
            setup.direct,
            setup.plugmesh,
            replace(setup.plugmesh, name=WITH_NOOP, hooks=(NOOP_HOOK,)),
            replace(setup.plugmesh, name=WITH_GUARD, hooks=("secrets-guard",)),
        ]
        for target in targets:  # warm-up: connections, caches, lazy imports
            measure(target, 8, min(requests, 1000), 5, setup)
        audited_before, _ = audit_log(setup)
        quiet(setup.pids)
        before = {name: base.cpu_seconds(pid) for name, pid in setup.pids.items()}
        time.sleep(5)  # the watched processes' own CPU use when idle, for scale
        idle = {
            name: (base.cpu_seconds(pid) - before[name]) * 200 for name, pid in setup.pids.items()
        }
        cells: dict[tuple[str, int], list[Measured]] = {}
        for concurrency in (1, 16):
            for _ in range(rounds):
                for target in targets:
                    measured = measure(target, concurrency, requests, seconds, setup)
                    cells.setdefault((target.name, concurrency), []).append(measured)
        audited, newest = audit_log(setup)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        report(
            f"{os.cpu_count()} cores, load average {load} (before: {load_before}), loopback; "
            f"{requests} calls or {seconds:g} s per run, median of {rounds} run(s); "
            f"`tools/call` of `echo`, MCP {MODERN}; idle, the watched processes use "
            + ", ".join(f"{name} {ms:.0f}" for name, ms in idle.items())
            + " ms of CPU a second",
            cells,
        )
        calls = sum(
            m.result.requests for (name, _), runs in cells.items() for m in runs if name != "direct"
        )
        print(
            f"- audit log: {audited - audited_before} entries recorded during the "
            f"{calls} calls through plugmesh above; the newest: {newest}"
        )
        if profile_to is not None:
            run = lambda: measure(setup.plugmesh, 16, requests, seconds, setup)  # noqa: E731
            base.profile(setup.pids["gateway"], profile_to, run)
            print(f"py-spy samples of the gateway at c=16: {profile_to}")


def _median(runs: list[Measured]) -> Measured:
    return sorted(runs, key=lambda run: run.result.rps)[len(runs) // 2]


def report(heading: str, cells: dict[tuple[str, int], list[Measured]]) -> None:
    watched = ["upstream", *MESH, NOOP_HOOK]
    columns = ["path", "c", "calls/s", "p50 ms", "p99 ms", "errors", "CPU ms/call: client"]
    print(f"{heading}\n\n| {' | '.join(columns + watched)} |")
    print("|---|" + "--:|" * (len(columns) + len(watched) - 1))
    for (name, concurrency), runs in cells.items():
        result, cpu = _median(runs).result, _median(runs).cpu_ms
        errors = sum(run.result.errors for run in runs)
        print(
            f"| {name} | {concurrency} | {result.rps:.0f} | {result.p50_ms:.2f} | "
            f"{result.p99_ms:.2f} | {errors} | {result.client_cpu_ms:.3f} | "
            + " | ".join(f"{cpu[process]:.3f}" for process in watched)
            + " |"
        )
    direct, through = (_median(cells[(t, 16)]).result.rps for t in ("direct", "through plugmesh"))
    share = through / direct if direct else 0.0
    p50s = [_median(cells[(t, 1)]).result.p50_ms for t in ("direct", "through plugmesh")]
    added = p50s[1] - p50s[0]
    print(
        f"\n- c=16: through plugmesh = {share:.0%} of direct throughput "
        f"(target >= 50%: {'met' if share >= 0.5 else 'NOT met'})"
        f"\n- c=1: through plugmesh adds {added:.2f} ms to p50 "
        f"(target <= 2 ms: {'met' if added <= 2 else 'NOT met'})"
    )
    p50 = {t: _median(cells[(t, 1)]).result.p50_ms for t in ("through plugmesh", WITH_NOOP)}
    hooked = p50[WITH_NOOP] - p50["through plugmesh"]
    inside = _median(cells[(WITH_NOOP, 1)]).hook_ms
    print(
        f"- c=1: a no-op pre- and post-hook adds {hooked:.2f} ms to p50 over no hooks "
        f"(target <= 1 ms: {'met' if hooked <= 1 else 'NOT met'}); its round trips as the "
        "gateway timed them (mean): "
        + ", ".join(f"{phase} {ms:.2f} ms" for phase, ms in sorted(inside.items()))
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=5000, help="calls per run (default 5000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="limit per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per cell (default 3)")
    parser.add_argument("--profile", type=Path, help="also sample the gateway with py-spy at c=16")
    parser.add_argument("--serve-upstream", metavar="ADDRESS")
    parser.add_argument("--load", nargs=5, metavar=("ADDRESS", "TOOL", "C", "N", "SECONDS"))
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(int(args.serve_upstream.rpartition(":")[2]))
    elif args.load:
        import uvloop

        address, tool, concurrency, requests, seconds = args.load
        load_run = load(address, tool, int(concurrency), int(requests), float(seconds))
        print(json.dumps(asdict(uvloop.run(load_run))))
    else:
        bench(args.requests, args.seconds, args.rounds, args.profile)


if __name__ == "__main__":
    main()
