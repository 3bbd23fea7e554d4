"""A hand-written stdio MCP server (2025-11-25 handshake) that answers what the SDK's
servers never would: a malformed ``tools/call`` result, a JSON-RPC error, a stray line
on stdout.

    python -m tests.gateway.mcp_upstreams.raw_upstream

Tools: ``malformed`` (``content`` is not a list), ``rejected`` (JSON-RPC error -32602
with data), ``chatty`` (a non-JSON line on stdout, then a good result).
"""

from __future__ import annotations

import json
import sys
from typing import Any

TOOLS = [
    {"name": name, "inputSchema": {"type": "object"}}
    for name in ("malformed", "rejected", "chatty")
]


def answer(request: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one message; ``None`` for a notification."""
    method, ident = request.get("method"), request.get("id")
    if ident is None:
        return None
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": ident}
    if method == "initialize":
        reply["result"] = {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "raw", "version": "1"},
        }
    elif method == "tools/list":
        reply["result"] = {"tools": TOOLS}
    elif method == "ping":
        reply["result"] = {}
    elif method == "tools/call":
        name = request["params"]["name"]
        if name == "malformed":
            reply["result"] = {"content": "not a list"}
        elif name == "rejected":
            reply["error"] = {"code": -32602, "message": "no thanks", "data": {"why": "test"}}
        else:
            print("a stray line that is not JSON-RPC", flush=True)
            reply["result"] = {"content": [{"type": "text", "text": "still fine"}]}
    else:
        reply["error"] = {"code": -32601, "message": "Method not found"}
    return reply


def main() -> None:
    for line in sys.stdin:
        reply = answer(json.loads(line))
        if reply is not None:
            print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
