"""The gateway's HTTP service end to end: streams, headers, OpenAPI and docs, health,
readiness and metrics, and routes that follow the registry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2
from openapi_spec_validator import validate

from gateway.catalog import Catalog
from gateway.http import HttpServer, HttpSettings, build_app
from gateway.upstream import Upstreams
from registry.app import RegistryServer
from tests.gateway.conftest import StartEcho
from tests.gateway.http.conftest import Mesh, routed, running_mesh
from tests.support.waiting import eventually

module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """One mesh for the read-only tests of the module."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running


async def ndjson(http_mesh: Mesh, query: str) -> tuple[int, str, list[dict[str, Any]]]:
    async with http_mesh.client.stream("GET", f"/v1/things:stream?{query}") as response:
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
        return response.status_code, response.headers["content-type"], lines


async def sse(http_mesh: Mesh, query: str) -> tuple[int, str, list[tuple[str, Any]]]:
    headers = {"accept": "text/event-stream"}
    async with http_mesh.client.stream(
        "GET", f"/v1/things:stream?{query}", headers=headers
    ) as response:
        text = (await response.aread()).decode()
    events = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return response.status_code, response.headers["content-type"], events


@module_loop
async def test_stream_as_ndjson_has_one_result_line_per_message(http_mesh: Mesh) -> None:
    status, content_type, lines = await ndjson(http_mesh, "streamCount=3&name=n")
    assert (status, content_type) == (200, "application/x-ndjson")
    assert [line["result"]["index"] for line in lines] == [0, 1, 2]
    assert {line["result"]["request"]["name"] for line in lines} == {"n"}


@module_loop
async def test_stream_failing_midway_ends_with_an_error_line(http_mesh: Mesh) -> None:
    status, _, lines = await ndjson(http_mesh, "streamCount=5&fail=ABORTED&failAfter=2")
    assert status == 200
    assert [set(line) for line in lines] == [{"result"}, {"result"}, {"error"}]
    error = lines[-1]["error"]
    assert error["code"] == 10
    assert error["message"] == "the stream failed after 2 replies"
    assert error["details"][0]["reason"] == "TEST_FAILED"


@module_loop
async def test_stream_failing_before_its_first_message_gets_the_http_status(
    http_mesh: Mesh,
) -> None:
    response = await http_mesh.client.get("/v1/things:stream?fail=PERMISSION_DENIED")
    assert response.status_code == 403
    assert response.json()["code"] == 7


@module_loop
async def test_empty_stream_is_an_empty_200(http_mesh: Mesh) -> None:
    status, _, lines = await ndjson(http_mesh, "streamCount=0")
    assert (status, lines) == (200, [])


@module_loop
async def test_stream_as_sse_with_accept_event_stream(http_mesh: Mesh) -> None:
    status, content_type, events = await sse(http_mesh, "streamCount=2")
    assert (status, content_type) == (200, "text/event-stream")
    assert [(kind, data["index"]) for kind, data in events] == [("message", 0), ("message", 1)]


@module_loop
async def test_sse_failing_midway_ends_with_an_error_event(http_mesh: Mesh) -> None:
    status, _, events = await sse(http_mesh, "streamCount=3&fail=UNAVAILABLE&failAfter=1")
    assert status == 200
    assert [kind for kind, _ in events] == ["message", "error"]
    assert events[-1][1]["code"] == 14


@module_loop
async def test_client_leaving_a_stream_cancels_the_upstream_call(http_mesh: Mesh) -> None:
    servicer = http_mesh.plugin.servicer
    before = servicer.cancelled_streams
    async with http_mesh.client.stream("GET", "/v1/things:stream?streamCount=500&delayMs=20") as r:
        first = await anext(r.aiter_lines())
        assert json.loads(first)["result"]["index"] == 0

    async def cancelled() -> bool | None:
        return True if servicer.cancelled_streams == before + 1 else None

    await eventually(cancelled, what="the upstream stream cancelled")


@module_loop
async def test_request_headers_are_forwarded_as_metadata(http_mesh: Mesh) -> None:
    headers = {
        "Grpc-Metadata-Tenant": "acme",
        "Grpc-Metadata-Blob-Bin": "aGk=",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "k=v",
        "X-Request-Id": "req-1",
        "X-Plugmesh-Identity": '{"sub":"admin"}',
        "X-Plugmesh-Identity-Signature": "forged",
        "X-Plugmesh-User-Id": "admin",
        "Grpc-Metadata-X-Plugmesh-Identity": '{"sub":"admin"}',
        "Authorization": "Bearer secret",
        "X-Other": "not forwarded",
    }
    response = await http_mesh.client.get("/v1/things/t1", headers=headers)
    assert response.status_code == 200
    assert response.json()["metadata"] == [
        "blob-bin=aGk=",
        "tenant=acme",
        "traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate=k=v",
        "x-request-id=req-1",
    ]
    assert response.headers["grpc-metadata-x-served-by"] == "getthing"


@module_loop
async def test_openapi_is_valid_3_1_and_lists_every_route(http_mesh: Mesh) -> None:
    response = await http_mesh.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    paths = document["paths"]
    assert set(paths["/v1/things/{id}"]) == {"get", "patch", "put", "delete"}
    assert "/v1/alias/things/{id}" in paths
    assert "/v1/files/{name.1}" in paths
    assert "/v1/shelves/{name.1}/books/{name.2}" in paths
    assert "/v1/wild/{segment1}/thing" in paths
    assert "/v1/things/{id}:archive" in paths
    assert "/v1/search" not in paths  # SEARCH is not an OpenAPI method
    assert "post" in paths["/test.transcoding.v1.TranscodingService/Plain"]
    assert "/test.transcoding.v1.TranscodingService/Upload" not in paths
    stream = paths["/v1/things:stream"]["get"]["responses"]["200"]["content"]
    assert set(stream) == {"application/x-ndjson", "text/event-stream"}
    get = paths["/v1/things/{id}"]["get"]
    parameters = {p["name"]: p for p in get["parameters"]}
    assert parameters["id"]["in"] == "path"
    assert parameters["inner.deep.leaf"]["in"] == "query"
    schema = document["components"]["schemas"]["test.transcoding.v1.ThingRequest"]
    assert schema["properties"]["int64Value"] == {
        "type": "string",
        "format": "int64",
        "description": "int64 (a string in JSON).",
    }
    assert schema["properties"]["color"]["enum"][1] == "COLOR_RED"
    assert schema["properties"]["time"]["format"] == "date-time"
    assert "/v1/services" in paths  # the registry's own rule
    # Swagger UI's Authorize button: a bearer scheme, required where the RPC needs a caller.
    scheme = document["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert get["security"] == [{"bearer": []}]  # declares no access: AUTHENTICATED


@module_loop
async def test_openapi_describes_operations_and_fields_with_the_protos_comments(
    http_mesh: Mesh,
) -> None:
    document = (await http_mesh.client.get("/openapi.json")).json()

    paths = document["paths"]
    get = paths["/v1/things/{id}"]["get"]
    assert get["description"] == "A single-segment variable, with an additional binding."
    plain = paths["/test.transcoding.v1.TranscodingService/Plain"]["post"]
    assert plain["description"] == (
        "No rule: POST /test.transcoding.v1.TranscodingService/Plain.\n\n"
        "No google.api.http rule: the whole request is the body."
    )
    parameters = {p["name"]: p for p in get["parameters"]}
    assert parameters["id"]["description"] == "Single-segment path variable."
    assert parameters["inner.deep.leaf"]["description"] == "A leaf."
    assert "description" not in parameters["id"]["schema"]
    schemas = document["components"]["schemas"]
    thing = schemas["test.transcoding.v1.ThingRequest"]
    assert thing["description"] == "ThingRequest has a field of every kind the gateway maps."
    assert thing["properties"]["inner"] == {
        "$ref": "#/components/schemas/test.transcoding.v1.Inner",
        "description": "A nested message.",
    }
    assert thing["properties"]["tags"]["description"] == "Repeated strings."
    assert thing["properties"]["mask"]["description"] == "A field mask.\n\ncomma-separated paths"
    assert {
        "name": "test.transcoding.v1.TranscodingService",
        "description": "TranscodingService echoes requests back through every kind of binding.",
    } in document["tags"]
    # The registry's own contract, with the comments plugmesh ships beside its generated code.
    services = paths["/v1/services"]["get"]
    assert services["description"] == (
        "Lists every registered service with its instances and their health."
    )


@module_loop
async def test_docs_page_renders_openapi_from_installed_assets(http_mesh: Mesh) -> None:
    page = await http_mesh.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert 'url: "/openapi.json"' in page.text
    assert "http://" not in page.text.replace("<!DOCTYPE html>", "")
    bundle = await http_mesh.client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 100_000
    missing = await http_mesh.client.get("/docs/static/../../etc/passwd")
    assert missing.status_code == 404


@module_loop
async def test_healthz_and_readyz(http_mesh: Mesh) -> None:
    assert (await http_mesh.client.get("/healthz")).json() == {"status": "SERVING"}
    ready = await http_mesh.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "SERVING"
    assert ready.json()["routes"] > 20


@module_loop
async def test_metrics_count_requests_by_route_and_code(http_mesh: Mesh) -> None:
    await http_mesh.client.get("/v1/things/m1")
    await http_mesh.client.get("/v1/things/m1?fail=NOT_FOUND")
    await http_mesh.client.get("/nowhere")
    response = await http_mesh.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = 'method="GET",route="GET /v1/things/{id}"'
    assert f'plugmesh_gateway_http_requests_total{{code="200",{route}}}' in text
    assert f'plugmesh_gateway_http_requests_total{{code="404",{route}}}' in text
    assert 'requests_total{code="404",method="GET",route="unmatched"}' in text
    assert f'plugmesh_gateway_http_request_duration_seconds_bucket{{le="0.001",{route}}}' in text


@module_loop
async def test_registry_is_served_over_http_except_its_internal_rpcs(http_mesh: Mesh) -> None:
    response = await http_mesh.client.get("/v1/services")
    assert response.status_code == 200
    names = {service["name"] for service in response.json()["services"]}
    assert {"registry", "transcoding"} <= names
    internal = "/plugmesh.registry.v1.RegistryService/RegisterInstance"
    assert (await http_mesh.client.post(internal, json={})).status_code == 404
    assert internal not in (await http_mesh.client.get("/openapi.json")).json()["paths"]


async def test_unhealthy_instance_gets_no_traffic_until_it_serves_again(tmp_path: Path) -> None:
    async with running_mesh(tmp_path) as http_mesh:
        health = http_mesh.plugin.server.health

        async def answers(status: int) -> bool | None:
            response = await http_mesh.client.get("/v1/things/t1")
            return True if response.status_code == status else None

        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        await eventually(lambda: answers(503), what="503 while not serving")
        calls = http_mesh.plugin.servicer.calls.get("GetThing", 0)
        failed = await http_mesh.client.get("/v1/things/t1")
        assert failed.json()["details"][0]["reason"] == "NO_HEALTHY_INSTANCE"
        assert http_mesh.plugin.servicer.calls.get("GetThing", 0) == calls
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        await eventually(lambda: answers(200), what="200 once serving again")


async def test_default_deadline_bounds_unary_calls_not_streams(tmp_path: Path) -> None:
    settings = HttpSettings(default_timeout_seconds=0.2)
    async with running_mesh(tmp_path, settings) as http_mesh:
        response = await http_mesh.client.get("/v1/things/t1?delayMs=3000")
        assert response.status_code == 504
        assert response.json()["code"] == 4
        status, _, lines = await ndjson(http_mesh, "streamCount=2&delayMs=150")
        assert (status, [line["result"]["index"] for line in lines]) == (200, [0, 1])


@module_loop
async def test_stream_deadline_from_grpc_timeout(http_mesh: Mesh) -> None:
    response = await http_mesh.client.get(
        "/v1/things:stream?streamCount=2&delayMs=3000", headers={"grpc-timeout": "100m"}
    )
    assert response.status_code == 504
    assert response.json()["code"] == 4


async def test_routes_follow_plugins_registering_and_leaving(
    registry: RegistryServer, catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    app = build_app(catalog, upstreams, HttpSettings())
    server = HttpServer(app, "127.0.0.1:0", shutdown_grace_seconds=0.2)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://{server.address}") as client:
            assert (await client.get("/v1/echo/hello")).status_code == 404
            echo = await start_echo()
            await routed(app, "GET /v1/echo/{message}")

            async def served() -> dict[str, Any] | None:
                response = await client.get("/v1/echo/hello")
                return response.json() if response.status_code == 200 else None

            answer = await eventually(served, what="the echo route served")
            assert answer["message"] == "hello"
            assert answer["servedBy"] == echo.address
            await echo.stop()
            await routed(app, "GET /v1/echo/{message}", present=False)
            assert (await client.get("/v1/echo/hello")).status_code == 404
    finally:
        await server.stop()
        app.close()


class _Snapshot:
    schema_generation = 0

    def methods(self) -> Sequence[Any]:
        return ()


class _UnreadyCatalog:
    ready = False
    snapshot = _Snapshot()

    def subscribe(self, subscriber: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None


async def test_readyz_is_503_until_the_catalog_synced() -> None:
    app = build_app(_UnreadyCatalog(), upstreams=None, settings=HttpSettings())  # type: ignore[arg-type]  # never called
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "NOT_SERVING", "routes": 0}
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/v1/anything")).status_code == 404


async def test_taken_port_is_refused(tmp_path: Path) -> None:
    first = HttpServer(build_app(_UnreadyCatalog(), None, None), "127.0.0.1:0")  # type: ignore[arg-type]  # never called
    await first.start()
    try:
        second = HttpServer(build_app(_UnreadyCatalog(), None, None), first.address)  # type: ignore[arg-type]
        with pytest.raises(OSError, match="cannot listen"):
            await second.start()
    finally:
        await first.stop()
        await first.stop()
