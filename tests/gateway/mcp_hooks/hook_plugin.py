"""A hook plugin for the tests, run as a process of its own::

    python -m tests.gateway.mcp_hooks.hook_plugin '<plan as JSON>'

It is an ordinary plugin: a contract of its own (made at start, so that each test
declares the hook it needs) whose ``(plugmesh.options.v1.plugin).tool_hook`` declares
the hook, and ``plugmesh.mcp.v1.ToolCallHookService``, registered with the registry of
``PLUGMESH_REGISTRY_ADDRESS``. The plan::

    {"name": "hook-a",                      # its name in the registry: the hook's
     "hook": {"phases": ["HOOK_PHASE_PRE_TOOL_CALL"], "priority": 10, ...},
                                            # the ToolHook, as protobuf JSON
     "pre": {"append": "-a"},               # what PreToolCall answers (see _pre)
     "post": {"append": "-a"},              # what PostToolCall answers (see _post)
     "hide": ["up/add"]}                    # what FilterTools hides

Every answer also sets the attribute ``<name>`` to the phase it ran in.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, Servicer, run
from plugmesh.mcp.v1 import hooks_pb2, hooks_pb2_grpc
from plugmesh.options.v1 import options_pb2

_OPTIONS_FILE = options_pb2.DESCRIPTOR.name


def _contract(name: str, hook: dict[str, Any]) -> Servicer:
    """A service ``HookPlan`` without methods, declaring ``hook`` (no servicer to add)."""
    package = "hookplan." + name.replace("-", "_") + ".v1"
    file = descriptor_pb2.FileDescriptorProto(
        name=f"hookplan/{name}.proto",
        package=package,
        syntax="proto3",
        dependency=[_OPTIONS_FILE],
    )
    service = file.service.add(name="HookPlan")
    plugin = options_pb2.Plugin(version="1.0.0")
    json_format.ParseDict(hook, plugin.tool_hook)
    service.options.Extensions[options_pb2.plugin].CopyFrom(plugin)
    found = descriptor_pool.Default().AddSerializedFile(file.SerializeToString())
    return Servicer(found.services_by_name["HookPlan"], lambda _impl, _server: None, None)


def _text(result: dict[str, Any]) -> str:
    return "".join(c.get("text", "") for c in result.get("content", []) if c["type"] == "text")


class PlannedHook(hooks_pb2_grpc.ToolCallHookServiceServicer):
    """Answers as the plan says."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self._name = plan["name"]
        self._pre: dict[str, Any] = plan.get("pre", {})
        self._post: dict[str, Any] = plan.get("post", {})
        self._hide: list[str] = plan.get("hide", [])

    async def PreToolCall(
        self, request: hooks_pb2.PreToolCallRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> hooks_pb2.PreToolCallResponse:
        plan = self._pre
        await self._misbehave(plan, context)
        answer = hooks_pb2.PreToolCallResponse(attributes={self._name: "pre"})
        arguments = json_format.MessageToDict(request.call.arguments)
        if "append" in plan:
            arguments["text"] = arguments.get("text", "") + plan["append"]
            answer.modify.arguments.update(arguments)
        elif "deny" in plan:
            answer.deny.reason = plan["deny"]
        elif "respond" in plan:
            text = plan["respond"]
            answer.respond.result.update(
                {"content": [{"type": "text", "text": text}], "structuredContent": {"result": text}}
            )
            if "meta" in plan:
                answer.respond.result.update({"_meta": plan["meta"]})
        elif "protocol" in plan:
            # The revision the caller speaks, as the call's text.
            arguments["text"] = request.call.protocol_version
            answer.modify.arguments.update(arguments)
        elif "attributes" in plan:
            # What the earlier hooks set, as the call's text.
            arguments["text"] = json.dumps(dict(request.call.attributes), sort_keys=True)
            answer.modify.arguments.update(arguments)
        elif "bad" in plan:
            answer.respond.result.update({"content": "not a list"})
        else:
            answer.allow.SetInParent()
        return answer

    async def PostToolCall(
        self, request: hooks_pb2.PostToolCallRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> hooks_pb2.PostToolCallResponse:
        plan = self._post
        await self._misbehave(plan, context)
        answer = hooks_pb2.PostToolCallResponse(attributes={self._name: "post"})
        result = json_format.MessageToDict(request.result)
        if "append" in plan:
            text = _text(result) + plan["append"]
            result["content"] = [{"type": "text", "text": text}]
            if "structuredContent" in result:
                result["structuredContent"] = {"result": text}
            answer.replace.result.update(result)
        elif "redact" in plan:
            answer.redact.values.extend(plan["redact"])
        elif "redact_pointers" in plan:
            answer.redact.json_pointers.extend(plan["redact_pointers"])
        elif "deny" in plan:
            answer.deny.reason = plan["deny"]
        else:
            answer.allow.SetInParent()
        return answer

    async def FilterTools(
        self, request: hooks_pb2.FilterToolsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> hooks_pb2.FilterToolsResponse:
        offered = {f"{t.server}/{t.tool.name}" for t in request.tools}
        return hooks_pb2.FilterToolsResponse(hidden=[n for n in self._hide if n in offered])

    @staticmethod
    async def _misbehave(plan: dict[str, Any], context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if "sleep" in plan:
            await asyncio.sleep(plan["sleep"])
        if plan.get("fail"):
            await context.abort(grpc.StatusCode.INTERNAL, "the hook failed on purpose")


def main() -> int:
    plan: dict[str, Any] = json.loads(sys.argv[1])
    config = MeshConfig.from_env()
    server = PluginServer(
        plan["name"],
        [
            _contract(plan["name"], plan.get("hook", {})),
            Servicer.of(
                hooks_pb2,
                "ToolCallHookService",
                hooks_pb2_grpc.add_ToolCallHookServiceServicer_to_server,
                PlannedHook(plan),
            ),
        ],
        address="127.0.0.1:0",
        config=config,
    )
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
