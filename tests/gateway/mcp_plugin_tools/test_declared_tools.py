"""Which RPCs a contract offers as tools, and how: :func:`declared_tools` of a snapshot
holding a contract built here, and the JSON Schemas of its messages."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2

from gateway.json_schemas import message_schema
from gateway.mcpfront.plugin_tools import PluginTool, declared_tools
from gateway.model import Instance, Service, Snapshot, build_snapshot
from gateway.schemas import Schema
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2

PACKAGE = "test.tools.v1"
SERVICE = f"{PACKAGE}.ThingService"
_FDP = descriptor_pb2.FieldDescriptorProto
_LEVELS = descriptor_pb2.MethodOptions


def _contract() -> descriptor_pb2.FileDescriptorSet:
    """``ThingService``: RPCs marked as tools in every way that counts, and one not."""
    file = descriptor_pb2.FileDescriptorProto(
        name="test/tools/v1/things.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["plugmesh/options/v1/options.proto", "google/protobuf/timestamp.proto"],
    )
    thing = file.message_type.add(name="Thing")
    thing.field.add(name="thing_id", number=1, type=_FDP.TYPE_STRING, label=_FDP.LABEL_OPTIONAL)
    thing.field.add(name="count", number=2, type=_FDP.TYPE_INT64, label=_FDP.LABEL_OPTIONAL)
    thing.field.add(
        name="parts",
        number=3,
        type=_FDP.TYPE_MESSAGE,
        type_name=f".{PACKAGE}.Thing",
        label=_FDP.LABEL_REPEATED,
    )
    thing.field.add(
        name="made_at",
        number=4,
        type=_FDP.TYPE_MESSAGE,
        type_name=".google.protobuf.Timestamp",
        label=_FDP.LABEL_OPTIONAL,
    )
    reply = file.message_type.add(name="Reply")
    reply.field.add(name="ok", number=1, type=_FDP.TYPE_BOOL, label=_FDP.LABEL_OPTIONAL)
    service = file.service.add(name="ThingService")

    def rpc(
        name: str,
        *,
        tool: options_pb2.Tool | None = None,
        access: int = options_pb2.ACCESS_AUTHENTICATED,
        level: int = _LEVELS.IDEMPOTENCY_UNKNOWN,
        streaming: bool = False,
    ) -> None:
        method = service.method.add(
            name=name,
            input_type=f".{PACKAGE}.Thing",
            output_type=f".{PACKAGE}.Reply",
            server_streaming=streaming,
        )
        method.options.idempotency_level = level  # type: ignore[assignment]
        method.options.Extensions[options_pb2.access] = access  # type: ignore[misc]
        if tool is not None:
            method.options.Extensions[options_pb2.tool].CopyFrom(tool)

    rpc(
        "GetThing",
        tool=options_pb2.Tool(description="Gets a thing."),
        level=_LEVELS.NO_SIDE_EFFECTS,
    )
    rpc(
        "DeleteThing",
        tool=options_pb2.Tool(name="remove", title="Remove", destructive=True, open_world=True),
        access=options_pb2.ACCESS_ADMIN,
        level=_LEVELS.IDEMPOTENT,
    )
    rpc("WatchThings", tool=options_pb2.Tool(), streaming=True)
    rpc("SyncThings", tool=options_pb2.Tool(), access=options_pb2.ACCESS_INTERNAL)
    rpc("Rename", tool=options_pb2.Tool(name="re name"))
    rpc("GetThingAgain", tool=options_pb2.Tool(name="get_thing"))
    rpc("ListHTTPThings", tool=options_pb2.Tool())
    rpc("CountThings")
    # Comments as protoc records them: on Thing, on Reply.ok, on ListHTTPThings (method 6).
    for path, comment in [
        ([4, 0], " A thing.\n"),
        ([4, 1, 2, 0], " Whether it worked.\n"),
        ([6, 0, 2, 6], " Lists the things\n over HTTP.\n"),
    ]:
        file.source_code_info.location.add(path=path, span=[1, 0, 1], leading_comments=comment)
    files = descriptor_pb2.FileDescriptorSet()
    files.file.append(file)
    return files


def plugin_snapshot(
    name: str = "things", health: int = registry_pb2.HEALTH_STATUS_SERVING
) -> Snapshot:
    """A snapshot holding one plugin ``name`` that serves ``ThingService``."""
    service = Service(
        name=name,
        version="1.0.0",
        grpc_services=(SERVICE,),
        routes=(),
        instances=(Instance("i-1", "127.0.0.1:1", health),),  # type: ignore[arg-type]
        schema_digest="d",
        schema=Schema.build("d", _contract()),
    )
    return build_snapshot({name: service}, Snapshot())


def _tools() -> dict[str, PluginTool]:
    return declared_tools(plugin_snapshot())["things"]


def test_only_unary_rpcs_callers_may_reach_with_good_names_are_offered_once() -> None:
    assert set(_tools()) == {"get_thing", "list_http_things", "remove"}
    assert _tools()["get_thing"].method.full_name == f"{SERVICE}.GetThing"


def test_a_tool_is_named_after_its_rpc_in_snake_case_unless_it_says_otherwise() -> None:
    tools = _tools()

    assert tools["get_thing"].tool.description == "Gets a thing."
    assert tools["remove"].tool.title == "Remove"
    assert tools["remove"].tool.description == f"Calls {SERVICE}.DeleteThing."


def test_without_a_declared_description_a_tool_has_its_rpcs_comment() -> None:
    tool = _tools()["list_http_things"].tool

    assert tool.description == "Lists the things\nover HTTP."
    assert tool.input_schema["description"] == "A thing."
    assert tool.output_schema is not None
    assert tool.output_schema["properties"]["ok"] == {
        "type": "boolean",
        "description": "Whether it worked.",
    }


def test_hints_follow_the_idempotency_level_unless_declared() -> None:
    get = _tools()["get_thing"].tool.annotations
    remove = _tools()["remove"].tool.annotations
    assert get is not None
    assert remove is not None

    assert (get.read_only_hint, get.idempotent_hint, get.open_world_hint) == (True, True, False)
    assert get.destructive_hint is None
    assert (remove.read_only_hint, remove.destructive_hint) == (False, True)
    assert (remove.idempotent_hint, remove.open_world_hint) == (True, True)


def test_an_admin_rpc_is_a_tool_for_admins_only() -> None:
    assert _tools()["remove"].admin_only is True
    assert _tools()["get_thing"].admin_only is False


def test_a_plugin_whose_name_is_no_server_name_offers_nothing() -> None:
    assert declared_tools(plugin_snapshot("Things_2")) == {}


def test_the_input_schema_is_the_request_messages_and_recursion_stays_a_reference() -> None:
    schema: dict[str, Any] = dict(_tools()["get_thing"].tool.input_schema)

    assert schema["type"] == "object"
    assert schema["properties"]["thingId"] == {"type": "string"}
    assert schema["properties"]["count"] == {"type": "string", "format": "int64"}
    assert schema["properties"]["madeAt"] == {"type": "string", "format": "date-time"}
    ref = {"$ref": f"#/$defs/{PACKAGE}.Thing"}
    assert schema["properties"]["parts"] == {"type": "array", "items": ref}
    assert schema["$defs"][f"{PACKAGE}.Thing"]["properties"].keys() == schema["properties"].keys()


def test_a_message_reaching_no_other_has_no_definitions() -> None:
    reply = _tools()["get_thing"].method.descriptor.output_type

    assert message_schema(reply) == {
        "type": "object",
        "title": "Reply",
        "properties": {"ok": {"type": "boolean"}},
    }
