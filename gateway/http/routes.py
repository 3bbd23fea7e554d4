"""The HTTP route table: every ``google.api.http`` binding of every served method.

Built from a catalog snapshot (:func:`build_routes`) whenever the set of methods
changes, never per request. Each binding of a rule (the rule itself and each of its
``additional_bindings``) becomes one :class:`HttpRoute`; a method without a rule gets
``POST /<package.Service>/<Method>`` with the whole body as its request. Methods marked
``(plugmesh.options.v1.access) = ACCESS_INTERNAL`` and client-streaming methods get no
route. A binding that cannot be served (a template that does not parse, a field that
does not exist) is left out with a warning, and so is a second binding of the same
method and path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, message, message_factory

from gateway.http.ports import M
from gateway.http.router import Router
from gateway.http.template import PathTemplate, TemplateError, parse_template
from plugmesh.options.v1 import options_pb2

__all__ = ["HttpRoute", "RouteTable", "build_routes"]

log = logging.getLogger(__name__)

_FD = descriptor.FieldDescriptor


@dataclass(frozen=True, eq=False)
class HttpRoute(Generic[M]):
    """One HTTP binding of an RPC.

    Attributes:
        method: The catalog's method, passed to the upstream calls.
        http_method: ``GET``, ``POST``, … (custom kinds as declared).
        template: The parsed path template.
        body: ``""`` (no body), ``"*"`` (the whole request) or a top-level field name.
        response_body: ``""`` (the whole response) or a top-level field name.
        request_class: The request message class.
        response_class: The response message class.
        annotated: False for the ``POST /<package.Service>/<Method>`` fallback.
    """

    method: M
    http_method: str
    template: PathTemplate
    body: str
    response_body: str
    request_class: type[message.Message]
    response_class: type[message.Message]
    annotated: bool = True

    @property
    def rpc(self) -> descriptor.MethodDescriptor:
        """The RPC's descriptor."""
        return self.method.descriptor

    @property
    def server_streaming(self) -> bool:
        """Whether the RPC answers with a stream."""
        return bool(self.rpc.server_streaming)

    @property
    def label(self) -> str:
        """``GET /v1/users/{user_id}``: names the route in metrics and logs."""
        return f"{self.http_method} {self.template.source}"


@dataclass(frozen=True)
class RouteTable(Generic[M]):
    """The compiled routes of one catalog generation."""

    router: Router[HttpRoute[M]]
    routes: tuple[HttpRoute[M], ...]
    generation: int


def build_routes(methods: Iterable[M], generation: int = 0) -> RouteTable[M]:
    """Compile every binding of ``methods`` into a :class:`RouteTable`."""
    router: Router[HttpRoute[M]] = Router()
    routes: list[HttpRoute[M]] = []
    for method in methods:
        for route in _bindings(method):
            if router.add(route.http_method, route.template, route):
                routes.append(route)
            else:
                log.warning(
                    "an HTTP binding is taken by another method; left out",
                    extra={"route": route.label, "rpc": route.rpc.full_name},
                )
    return RouteTable(router, tuple(routes), generation)


def _bindings(method: M) -> list[HttpRoute[M]]:
    rpc = method.descriptor
    if rpc.client_streaming:
        return []  # served by the gRPC ingress only
    options = rpc.GetOptions()
    if options.Extensions[options_pb2.access] == options_pb2.ACCESS_INTERNAL:
        return []  # for the mesh's own services only; the gateway does not expose it
    request_class = message_factory.GetMessageClass(rpc.input_type)
    response_class = message_factory.GetMessageClass(rpc.output_type)
    if not options.HasExtension(annotations_pb2.http):
        template = parse_template(f"/{rpc.containing_service.full_name}/{rpc.name}")
        return [HttpRoute(method, "POST", template, "*", "", request_class, response_class, False)]
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    found: list[HttpRoute[M]] = []
    for binding in (rule, *rule.additional_bindings):
        try:
            found.append(_route(method, binding, request_class, response_class))
        except (TemplateError, ValueError) as exc:
            log.warning(
                "an HTTP binding cannot be served; left out",
                extra={"rpc": rpc.full_name, "error": str(exc)},
            )
    return found


def _route(
    method: M,
    rule: http_pb2.HttpRule,
    request_class: type[message.Message],
    response_class: type[message.Message],
) -> HttpRoute[M]:
    pattern = rule.WhichOneof("pattern")
    if pattern is None:
        raise ValueError("the rule has no pattern")
    if pattern == "custom":
        http_method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        http_method, path = pattern.upper(), getattr(rule, pattern)
    template = parse_template(path)
    request = method.descriptor.input_type
    for variable in template.variables:
        field = _resolve(request, variable.field_path)
        if field.is_repeated or field.type in (_FD.TYPE_MESSAGE, _FD.TYPE_GROUP):
            raise ValueError(f"path variable {variable.name} is not a singular scalar field")
    if rule.body not in ("", "*"):
        _resolve(request, (rule.body,))
    if rule.response_body:
        _resolve(method.descriptor.output_type, (rule.response_body,))
    return HttpRoute(
        method, http_method, template, rule.body, rule.response_body, request_class, response_class
    )


def _resolve(message_type: descriptor.Descriptor, path: tuple[str, ...]) -> _FD:
    current = message_type
    field: _FD | None = None
    for index, name in enumerate(path):
        field = current.fields_by_name.get(name)
        if field is None:
            raise ValueError(f"{current.full_name} has no field {name!r}")
        if index < len(path) - 1:
            if field.message_type is None or field.is_repeated:
                raise ValueError(f"{'.'.join(path)}: {name} is not a singular message field")
            current = field.message_type
    assert field is not None
    return field
