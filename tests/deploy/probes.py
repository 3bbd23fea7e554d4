"""Run a container's Kubernetes probes, as the kubelet would, against a process in a test.

A probe names a container port; the container's environment says which address variable
listens there, and the test says where the process it started listens for that variable
(its ports are free ones, not the manifest's).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import httpx

from launcher.addresses import split_address
from launcher.health import check_health

__all__ = ["probe_passes"]

_TIMEOUT_SECONDS = 3.0


def _address(container: Mapping[str, Any], port: int | str, addresses: Mapping[str, str]) -> str:
    """Where the test's process listens for the container port ``port``."""
    if isinstance(port, str):
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert port in named, f"container {container['name']} has no port named {port!r}"
        port = named[port]
    for item in container.get("env", []):
        value = item.get("value")
        if isinstance(value, str) and ":" in value and split_address(value)[1] == port:
            assert item["name"] in addresses, f"the test does not say where {item['name']} is"
            return addresses[item["name"]]
    raise AssertionError(f"container {container['name']}: no address variable listens on {port}")


async def probe_passes(
    container: Mapping[str, Any], probe: Mapping[str, Any], addresses: Mapping[str, str]
) -> bool:
    """Whether ``probe`` of ``container`` succeeds now (one attempt).

    ``addresses`` maps the container's address variables to where the process listens.
    """
    if "grpc" in probe:
        target = _address(container, probe["grpc"]["port"], addresses)
        service = probe["grpc"].get("service", "")
        out = io.StringIO()
        return await check_health(target, service, _TIMEOUT_SECONDS, out, out) == 0
    if "httpGet" in probe:
        get = probe["httpGet"]
        target = _address(container, get["port"], addresses)
        async with httpx.AsyncClient(timeout=_TIMEOUT_SECONDS) as client:
            try:
                response = await client.get(f"http://{target}{get.get('path', '/')}")
            except httpx.TransportError:
                return False
        # The kubelet counts any status from 200 to 399 as a success.
        return 200 <= response.status_code < 400
    raise AssertionError(f"container {container['name']}: a probe the tests cannot run: {probe}")
