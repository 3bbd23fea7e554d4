"""Reading contracts (services, plugin options, HTTP routes) out of file descriptors."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2
from registry.model import Dependency, HttpRoute
from registry.schemas import SchemaError, normalize_path, read_contract
from tests.support.registry import Contract, Method, contract_file, descriptor_set

WIDGETS = Contract(
    package="test.widgets.v1",
    service="WidgetService",
    methods=[
        Method("GetWidget", [("GET", "/v1/widgets/{id}"), ("GET", "/api/widgets/{id}")]),
        Method("CreateWidget", [("POST", "/v1/widgets")]),
        Method("Purge", [("PURGE", "/v1/widgets")]),
        Method("Internal"),
    ],
    plugin=options_pb2.Plugin(
        version="1.4.0",
        produces=["widget.created"],
        consumes=["user.*"],
        dependencies=[options_pb2.Dependency(service="test.users.v1.UserService", optional=True)],
    ),
)


def test_contract_has_routes_including_additional_bindings_and_custom_verbs() -> None:
    contract = read_contract([contract_file(WIDGETS)], [WIDGETS.full_name])

    rpc = "test.widgets.v1.WidgetService."
    assert contract.routes == (
        HttpRoute("GET", "/v1/widgets/{id}", rpc + "GetWidget"),
        HttpRoute("GET", "/api/widgets/{id}", rpc + "GetWidget"),
        HttpRoute("POST", "/v1/widgets", rpc + "CreateWidget"),
        HttpRoute("PURGE", "/v1/widgets", rpc + "Purge"),
    )


def test_contract_has_the_plugin_option_metadata() -> None:
    contract = read_contract([contract_file(WIDGETS)], [WIDGETS.full_name])

    assert contract.version == "1.4.0"
    assert contract.produces == ("widget.created",)
    assert contract.consumes == ("user.*",)
    assert contract.dependencies == (Dependency("test.users.v1.UserService", "", True),)


def test_schema_holds_the_service_file_after_everything_it_imports() -> None:
    contract = read_contract([contract_file(WIDGETS)], [WIDGETS.full_name])

    files = [f.name for f in descriptor_pb2.FileDescriptorSet.FromString(contract.schema).file]
    assert files[-1] == "test/widgets/v1/service.proto"
    assert {"google/api/annotations.proto", "plugmesh/options/v1/options.proto"} <= set(files)
    assert files.index("google/protobuf/descriptor.proto") < files.index(
        "google/api/annotations.proto"
    )


def test_services_default_to_every_service_the_files_define() -> None:
    contract = read_contract(list(descriptor_set([contract_file(WIDGETS)]).file), [])

    assert contract.grpc_services == (WIDGETS.full_name,)


def test_digest_ignores_file_order_and_changes_with_the_schema() -> None:
    files = list(descriptor_set([contract_file(WIDGETS)]).file)
    changed = Contract(package=WIDGETS.package, service="WidgetService", methods=[Method("Other")])

    first = read_contract(files, [WIDGETS.full_name]).schema_digest
    reordered = read_contract(list(reversed(files)), [WIDGETS.full_name]).schema_digest
    other = read_contract([contract_file(changed)], [WIDGETS.full_name]).schema_digest

    assert first == reordered
    assert first != other
    assert first.startswith("sha256:")


def test_registry_contract_is_read_from_its_generated_descriptors() -> None:
    service = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]
    file = descriptor_pb2.FileDescriptorProto()
    service.file.CopyToProto(file)

    contract = read_contract([file], [service.full_name])

    assert contract.version == "1.0.0"
    assert "registry.instance.registered" in contract.produces
    assert HttpRoute("GET", "/v1/services", service.full_name + ".ListServices") in contract.routes


@pytest.mark.parametrize(
    ("files", "services", "message"),
    [
        ([contract_file(WIDGETS)], ["test.widgets.v1.Nope"], "no file defines"),
        (
            [contract_file(Contract("a.v1", "A", extra_imports=["missing/thing.proto"]))],
            ["a.v1.A"],
            "missing/thing.proto",
        ),
    ],
    ids=["unknown-service", "missing-import"],
)
def test_unusable_descriptors_are_refused_with_the_reason(
    files: list[descriptor_pb2.FileDescriptorProto], services: list[str], message: str
) -> None:
    with pytest.raises(SchemaError, match=message):
        read_contract(files, services)


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [
        ("/v1/users/{user_id}", "/v1/users/{id}", True),
        ("/v1/{name=shelves/*}", "/v1/shelves/{shelf}", True),
        ("/v1/{name=shelves/*/books/*}", "/v1/shelves/{s}/books/{b}", True),
        ("/v1/users/{id}:undelete", "/v1/users/{user}:undelete", True),
        ("/v1/users/{id}", "/v1/users/{id}:undelete", False),
        ("/v1/users/{id}", "/v1/groups/{id}", False),
        ("/v1/{path=**}", "/v1/{rest=*}", False),
    ],
    ids=["renamed-var", "pattern-vs-var", "nested-pattern", "verb", "verb-differs",
         "literal-differs", "double-star"],
)  # fmt: skip
def test_path_templates_compare_with_variable_names_erased(
    left: str, right: str, same: bool
) -> None:
    assert (normalize_path(left) == normalize_path(right)) is same


def test_process_serving_no_grpc_service_has_an_empty_contract() -> None:
    contract = read_contract([descriptor_pb2.FileDescriptorProto(name="empty.proto")], [])

    assert (contract.grpc_services, contract.routes, contract.version) == ((), (), "")
    assert descriptor_pb2.FileDescriptorSet.FromString(contract.schema).file == []
