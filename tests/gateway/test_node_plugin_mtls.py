"""A plugin in another language in a mesh that runs mutual TLS: the Node test plugin
(tests/node/plugin.js, grpc-js) with a certificate of the mesh CA registers, is watched
and is called through the gateway; with a certificate that names another service, the
registry refuses it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway.app import Gateway
from registry.app import RegistryServer
from tests.gateway import node
from tests.gateway.node import NAME, NEEDS_NODE
from tests.gateway.test_mesh_tls import ca, gateway, registry
from tests.gateway.test_node_plugin import NO_NATS, routed
from tests.support.certs import TestCa

__all__ = ["ca", "gateway", "registry"]  # the fixtures, shared with tests.gateway.test_mesh_tls

pytestmark = [*NEEDS_NODE, pytest.mark.timeout(90)]


async def test_a_node_plugin_with_a_mesh_certificate_is_called_through_the_gateway(
    gateway: Gateway, registry: RegistryServer, ca: TestCa, tmp_path: Path
) -> None:
    plugin = await node.start_node(
        registry.address, "", tmp_path / "node.log", nats_url=NO_NATS, tls=ca.member(NAME)
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}") as http:
            got = await routed(http, "/v1/greetings/World")
    finally:
        await plugin.stop()

    assert got.status_code == 200, got.text
    assert "World" in got.text


async def test_a_node_plugin_whose_certificate_names_another_service_is_refused(
    registry: RegistryServer, ca: TestCa, tmp_path: Path
) -> None:
    process, line = await node.spawn(
        registry.address, "", tmp_path / "node.log", nats_url=NO_NATS, tls=ca.member("users")
    )
    try:
        code = await node.NodePlugin(process, "", "", tmp_path / "node.log").exit_code(30)
    finally:
        await node.stop_process(process)

    assert (line, code) == (b"", 2)
    refused = json.loads((tmp_path / "node.log").read_text().splitlines()[-1])
    assert (refused["message"], refused["code"]) == ("registration refused", 7)  # DENIED
    assert "names ['users'], not 'node-greeter'" in refused["details"]
