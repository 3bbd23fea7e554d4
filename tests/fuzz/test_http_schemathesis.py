"""Schemathesis against the gateway's live ``/openapi.json``: requests generated from the
schema (valid and deliberately invalid) for every operation, with the admin's token.

No answer is a 5xx, every error answer is a ``google.rpc.Status`` JSON, and every answer
matches the document (status code, content type, body schema). The number of requests
sent is counted, so the test cannot pass by sending nothing. The mesh is this module's
own: generated deletes and creates touch nothing another test uses.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from tests.gateway.auth.mesh import Mesh

pytestmark = [pytest.mark.fuzz, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

#: Examples per operation and generation mode; Hypothesis stops earlier for small spaces.
EXAMPLES = 20
MINIMUM_REQUESTS = 1000
REQUEST_TIMEOUT_SECONDS = 10.0
#: Schemathesis's checks of an answer against the document (status code, content type,
#: body schema), beside the 5xx and error-body checks of :func:`check`.
CONFORMANCE = [
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@dataclass
class Tally:
    """What was sent and what came back wrong."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    wrong: list[str] = field(default_factory=list)


def status_problem(response: requests.Response) -> str:
    """Why an error answer is not a ``google.rpc.Status`` JSON, or ``""``."""
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:80]!r}"
    if not isinstance(body, dict):
        return f"not an object: {body!r:.80}"
    if not isinstance(body.get("code"), int) or isinstance(body.get("code"), bool):
        return f"code is not an int: {body!r:.120}"
    if not isinstance(body.get("message"), str):
        return f"message is not a string: {body!r:.120}"
    details = body.get("details", [])
    if not isinstance(details, list) or not all(
        isinstance(d, dict) and isinstance(d.get("@type"), str) for d in details
    ):
        return f"details are not Any messages: {body!r:.160}"
    return ""


def check(tally: Tally, label: str, response: requests.Response) -> None:
    tally.sent += 1
    tally.statuses[response.status_code] += 1
    tally.operations.add(label)
    request = f"{response.request.method} {response.request.url}"
    if response.status_code >= 500:
        tally.wrong.append(f"{request} -> {response.status_code} {response.text[:200]}")
    elif response.status_code >= 400:
        problem = status_problem(response)
        if problem:
            tally.wrong.append(f"{request} -> {response.status_code}: {problem}")


def without_dotted_parameters(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with path parameters like ``{user.user_id}`` renamed ``{user_user_id}``.

    The OpenAPI names are right (a parameter name may hold any character), but
    Schemathesis fills path templates with ``str.format``, which reads a dot as attribute
    access and rejects the operation. The URLs it sends are the same either way.
    """
    renamed: dict[str, Any] = {}
    for path, item in document["paths"].items():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and "." in parameter["name"]:
                    flat = parameter["name"].replace(".", "_")
                    path = path.replace("{" + parameter["name"] + "}", "{" + flat + "}")
                    parameter["name"] = flat
        renamed[path] = item
    return {**document, "paths": renamed}


def run_schemathesis(base_url: str, document: dict[str, Any], token: str) -> Tally:
    """Generate and send the requests (blocking; the mesh runs in another thread's loop)."""
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_dict(document)
    tally = Tally()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                raise result.err()  # an operation Schemathesis cannot read: nothing sent
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                each = sender(operation, mode, lambda c: send(c, base_url, session, headers, tally))
                try:
                    each()
                except Unsatisfiable:
                    # Nothing in this operation can be made invalid (a lone string path
                    # parameter accepts any string): there are no negative cases.
                    assert mode is GenerationMode.NEGATIVE, operation.label
    return tally


def sender(operation: Any, mode: GenerationMode, call: Callable[[Any], None]) -> Callable[[], None]:
    """A Hypothesis test that hands each generated case of ``operation`` to ``call``."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # failures are collected, not shrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def each(case: Any) -> None:
        call(case)

    return each


def send(
    case: Any, base_url: str, session: requests.Session, headers: dict[str, str], tally: Tally
) -> None:
    response = case.call(
        base_url=base_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
    )
    check(tally, case.operation.label, response)
    try:
        case.validate_response(response, checks=CONFORMANCE)
    except* AssertionError as failures:
        tally.wrong.extend(f"{case.operation.label}: {f}" for f in failures.exceptions)


async def test_generated_requests_get_no_5xx_and_every_error_is_a_google_rpc_status(
    auth_mesh: Mesh,
) -> None:
    base_url = f"http://{auth_mesh.gateway.http_address}"
    document = without_dotted_parameters((await auth_mesh.http.get("/openapi.json")).json())
    expected = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item}

    tally = await asyncio.to_thread(run_schemathesis, base_url, document, auth_mesh.admin_token)

    print(f"\n{tally.sent} requests, statuses {dict(sorted(tally.statuses.items()))}")
    assert tally.sent >= MINIMUM_REQUESTS
    assert tally.operations == expected
    assert tally.wrong == []
    assert (await auth_mesh.http.get("/readyz")).status_code == 200
