"""The console's endpoint without a browser or a mesh: which paths it claims, its
refusals, and a live feed that ends when the gateway drains it (so a page left open
never holds the gateway's shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from gateway.auth.errors import AuthFailed
from gateway.catalog import Catalog
from gateway.console import Console, NatsEvents
from gateway.http.asgi import Message
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2
from tests.support.waiting import until

PLAIN = Identity(PrincipalKind.MACHINE, "m-1")


class Callers:
    """Everyone presenting "Bearer ok" is ``PLAIN``; nobody else."""

    async def identify(self, scope: Mapping[str, Any]) -> Identity:
        if (b"authorization", b"Bearer ok") in scope["headers"]:
            return PLAIN
        raise AuthFailed(
            "a bearer token is needed",
            failure=auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS,
        )


@pytest.fixture
def console() -> Console:
    # Never started: its snapshot is the empty mesh, and nothing here reaches NATS.
    return Console(Catalog("127.0.0.1:1"), Callers(), NatsEvents("nats://127.0.0.1:1"))


def _scope(path: str, method: str = "GET", token: str | None = "ok") -> dict[str, Any]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return {"type": "http", "method": method, "path": path, "headers": headers}


class Exchange:
    """One request's sent messages; the client stays until ``leave()``."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._gone = asyncio.Event()

    async def receive(self) -> Message:
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._gone.set()

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent[1:])


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/console", "/console"),
        ("/console/", "/console"),
        ("/console/static/main.js", "/console/static/"),
        ("/console/api/mesh", "/console/api/mesh"),
        ("/console/api/nothing", "/console/api/"),
        ("/console/api/deadletters/12:replay", "/console/api/deadletters/{id}:replay"),
        ("/console/elsewhere", "/console"),
        ("/consoles", None),
        ("/v1/users", None),
    ],
    ids=lambda value: str(value),
)
def test_the_console_claims_its_paths_with_bounded_labels(
    console: Console, path: str, label: str | None
) -> None:
    assert console.route(path) == label


@pytest.mark.parametrize(
    ("scope", "status"),
    [
        (_scope("/console/api/me", token=None), 401),
        (_scope("/console/api/me", token="bad"), 401),
        (_scope("/console/api/mcp"), 403),
        (_scope("/console/api/events"), 403),
        (_scope("/console/api/deadletters"), 403),
        (_scope("/console/api/deadletters/1:replay", method="POST"), 403),
        (_scope("/console/api/me", method="POST"), 405),
        (_scope("/console/api/nothing"), 404),
        (_scope("/console/static/../__init__.py"), 404),
        (_scope("/console/static/.hidden.js"), 404),
        (_scope("/console/static/index.html"), 200),
        (_scope("/console/api/me"), 200),
    ],
    ids=[
        "no-token",
        "bad-token",
        "mcp-not-admin",
        "tail-not-admin",
        "letters-not-admin",
        "replay-not-admin",
        "wrong-method",
        "unknown-api",
        "outside-static",
        "hidden-file",
        "page",
        "me",
    ],
)
async def test_the_console_answers_and_refuses(
    console: Console, scope: dict[str, Any], status: int
) -> None:
    exchange = Exchange()

    sent = await console(scope, exchange.receive, exchange.send)

    assert sent == exchange.status == status


async def test_an_open_feed_ends_when_the_console_drains(console: Console) -> None:
    exchange = Exchange()
    feed = asyncio.create_task(
        console(_scope("/console/api/mesh"), exchange.receive, exchange.send)
    )
    await until(lambda: b"event: mesh" in exchange.body, what="the mesh's first frame")

    console.drain()
    status = await asyncio.wait_for(feed, timeout=5)

    assert status == 200
    assert exchange.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_an_open_feed_ends_when_the_client_leaves(console: Console) -> None:
    exchange = Exchange()
    feed = asyncio.create_task(
        console(_scope("/console/api/mesh"), exchange.receive, exchange.send)
    )
    await until(lambda: b"event: mesh" in exchange.body, what="the mesh's first frame")

    exchange.leave()

    assert await asyncio.wait_for(feed, timeout=5) == 200
