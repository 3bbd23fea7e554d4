"""Payloads declared in a producer's own contract (a plugin in any language) are decoded
with that contract, so their entries name the actor and hold the fields as JSON."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, message, message_factory

from meshkit.descriptors import build_pool
from meshkit.events import ReceivedEvent, build_event, subject_of
from plugmesh.events.v1 import event_pb2
from plugmesh.options.v1 import options_pb2
from services.audit.events import REDACTED, draft_of_event
from services.audit.model import Actor, ActorType
from services.audit.payloads import ContractPayloads, RegistrySchemas
from tests.registry import conftest as _registry_fixtures
from tests.support.registry import StartRegistry

registry_config = _registry_fixtures.registry_config
start_registry = _registry_fixtures.start_registry

SERVICE = "widgets"
SOURCE = f"/plugmesh/{SERVICE}"


def contract() -> descriptor_pb2.FileDescriptorSet:
    """A plugin's contract with one event payload, ``example.v1.WidgetMade``."""
    file = descriptor_pb2.FileDescriptorProto(
        name="example/v1/widgets.proto",
        package="example.v1",
        syntax="proto3",
        dependency=["plugmesh/events/v1/event.proto", "plugmesh/options/v1/options.proto"],
    )
    made = file.message_type.add(name="WidgetMade")
    made.options.Extensions[options_pb2.event].type = "widget.made"
    for number, (name, type_name) in enumerate(
        [("actor", ".plugmesh.events.v1.Actor"), ("widget_id", ""), ("api_key", "")], start=1
    ):
        field = made.field.add(name=name, number=number, json_name=_camel(name))
        field.label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        if type_name:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
            field.type_name = type_name
        else:
            field.type = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    return descriptor_pb2.FileDescriptorSet(file=[file])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def widget_made(**fields: object) -> message.Message:
    """A WidgetMade built from the contract, as the producer would."""
    pool, _ = build_pool(contract().file)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("example.v1.WidgetMade"))
    return cls(**fields)


def received(payload: message.Message) -> ReceivedEvent:
    event = build_event(payload, source=SOURCE, subject="widgets/w-1")
    return ReceivedEvent(envelope=event, subject=subject_of(event.type))


class Contracts:
    """A SchemaSource that counts lookups; ``files`` is what it answers."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet | None) -> None:
        self.files = files
        self.asked: list[str] = []

    async def schema(self, service: str) -> descriptor_pb2.FileDescriptorSet | None:
        self.asked.append(service)
        return self.files


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# A dict: the payload's Actor is a class of the contract's pool, not event_pb2.Actor.
MACHINE = {"type": event_pb2.ACTOR_TYPE_MACHINE, "id": "m-1", "display_name": "ci"}


async def test_the_entry_has_the_actor_and_fields_of_a_payload_from_a_contract() -> None:
    event = received(widget_made(actor=MACHINE, widget_id="w-1", api_key="secret-key"))
    payloads = ContractPayloads(Contracts(contract()))

    draft = draft_of_event(event, await payloads.decode(event))

    assert draft.actor == Actor(ActorType.MACHINE, "m-1", "ci")
    assert draft.details == {
        "@type": "type.googleapis.com/example.v1.WidgetMade",
        "actor": {"type": "ACTOR_TYPE_MACHINE", "id": "m-1", "displayName": "ci"},
        "widgetId": "w-1",
        "apiKey": REDACTED,
    }


async def test_a_contract_is_fetched_once_and_again_only_after_a_while() -> None:
    contracts, clock = Contracts(contract()), Clock()
    payloads = ContractPayloads(contracts, refetch_after_seconds=30, clock=clock)
    known = received(widget_made(actor=MACHINE))
    unknown = received(widget_made(actor=MACHINE))
    unknown.envelope.data.type_url = "type.googleapis.com/example.v1.WidgetLost"

    decoded = [await payloads.decode(known), await payloads.decode(known)]
    missing = [await payloads.decode(unknown), await payloads.decode(unknown)]
    clock.now += 31
    later = await payloads.decode(unknown)

    assert all(payload is not None for payload in decoded)
    assert missing == [None, None]
    assert later is None
    assert contracts.asked == [SERVICE, SERVICE]


async def test_without_the_contract_the_payload_is_kept_as_bytes() -> None:
    event = received(widget_made(actor=MACHINE))

    payload = await ContractPayloads(Contracts(None)).decode(event)
    draft = draft_of_event(event, payload)

    assert payload is None
    assert draft.actor == Actor(ActorType.SYSTEM, SERVICE)
    assert set(draft.details) == {"@type", "value"}


async def test_a_payload_of_another_event_type_is_not_decoded() -> None:
    event = received(widget_made(actor=MACHINE))
    event.envelope.type = "widget.forged"

    assert await ContractPayloads(Contracts(contract())).decode(event) is None


@pytest.mark.timeout(30)
async def test_the_registry_gives_a_registered_plugins_contract(
    start_registry: StartRegistry,
) -> None:
    registry = await start_registry()
    schemas = RegistrySchemas(registry.address, None, timeout_seconds=2)
    try:
        unknown = await schemas.schema("nobody")
        registry_contract = await schemas.schema("registry")
    finally:
        await schemas.close()
        await schemas.close()

    assert unknown is None
    assert registry_contract is not None
    names = {file.name for file in registry_contract.file}
    assert "plugmesh/registry/v1/registry.proto" in names
