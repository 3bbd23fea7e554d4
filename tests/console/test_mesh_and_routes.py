"""The console's shell and mesh view in headless Chromium, against a whole running mesh:
sign-in, the services and their instances as the registry reports them, health and
leases pushed to the page as they change (a lease moving forward at each renewal, a
killed plugin's lease running out before the registry removes it), and what a caller
who is no admin is shown and refused."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from playwright.async_api import Browser

from gateway.http.routes import build_routes
from tests.console.browser import ConsolePage
from tests.gateway.auth.mesh import SECRET, SERVICES, Mesh, person_jwt
from tests.gateway.node import NAME, NEEDS_NODE, NodePlugin, start_node

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
    *NEEDS_NODE,
]

#: The issue's bound: a killed plugin is shown unhealthy, and back, within two seconds.
HEALTH_SHOWN_MILLIS = 2_000
#: The registry's default lease (the test mesh keeps it): instances renew thrice per lease.
LEASE_MILLIS = 10_000


def _card(service: str) -> str:
    return f'article[data-service="{service}"]'


async def test_the_mesh_view_shows_every_service_with_its_instances(
    auth_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.admin_token)
        await console.open("mesh")
        for name in ("registry", "gateway", *SERVICES):
            await console.page.wait_for_selector(f'{_card(name)}[data-serving="true"]')
        users = auth_mesh.gateway.catalog.service("users")
        assert users is not None
        shown = await console.page.inner_text(_card("users"))
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "mesh")
        token_in_url = auth_mesh.admin_token in console.page.url
        errors = console.errors

    assert users.version in shown
    assert all(instance.address in shown for instance in users.instances)
    assert "serving" in shown
    assert " s" in shown  # each lease's seconds left
    assert violations == []
    assert not token_in_url
    assert errors == []


async def test_a_lease_moves_forward_on_the_page_as_the_instance_renews_it(
    auth_mesh: Mesh, browser: Browser
) -> None:
    users = auth_mesh.gateway.catalog.service("users")
    assert users is not None
    lease = f'td[data-lease-for="{users.instances[0].instance_id}"]'
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.user_token)
        await console.open("mesh")
        await console.page.wait_for_selector(f"{lease}[data-lease-expire]")
        first = float(await console.page.get_attribute(lease, "data-lease-expire") or 0)
        # A renewal comes every third of a lease; the page hears it without a reload.
        await console.page.wait_for_function(
            "([selector, first]) => Number(document.querySelector(selector)"
            "?.dataset.leaseExpire) > first",
            arg=[lease, first],
            timeout=LEASE_MILLIS,
        )
        renewed = float(await console.page.get_attribute(lease, "data-lease-expire") or 0)
        left = int(await console.page.get_attribute(lease, "data-lease-left") or 0)
        errors = console.errors

    assert renewed > first
    assert 0 < left <= LEASE_MILLIS / 1000
    assert errors == []


async def test_a_killed_plugin_turns_unhealthy_on_the_page_and_back_after_its_restart(
    auth_mesh: Mesh, node_plugin: NodePlugin, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{auth_mesh.gateway.http_address}"
    restarted: NodePlugin | None = None
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.admin_token)
        await console.open("mesh")
        instance = f'{_card(NAME)} tr[data-instance="{node_plugin.instance_id}"]'
        await console.page.wait_for_selector(f'{instance}[data-health="SERVING"]')

        node_plugin.process.send_signal(signal.SIGKILL)
        await node_plugin.process.wait()
        await console.page.wait_for_selector(
            f'{_card(NAME)}[data-serving="false"]', timeout=HEALTH_SHOWN_MILLIS
        )
        unhealthy = await console.page.get_attribute(instance, "data-health")
        lease = f"{instance} td[data-lease-for]"
        held_until = await console.page.get_attribute(lease, "data-lease-expire")
        await console.screenshot(tmp_path, "mesh-unhealthy")

        # Nobody renews the lease any more: the page counts it down to the end, then the
        # registry removes the instance.
        await console.page.wait_for_selector(
            f'{lease}[data-lease-left="1"], {lease}[data-lease-left="0"]',
            timeout=LEASE_MILLIS + HEALTH_SHOWN_MILLIS,
        )
        held_at_the_end = await console.page.get_attribute(lease, "data-lease-expire")
        await console.page.wait_for_selector(
            instance, state="detached", timeout=LEASE_MILLIS + HEALTH_SHOWN_MILLIS
        )

        log = auth_mesh.data_dir / "logs" / "node-restarted.log"
        restarted = await start_node(
            auth_mesh.registry.address, SECRET, log, nats_url=auth_mesh.nats.url
        )
        try:
            await console.page.wait_for_selector(
                f'{_card(NAME)}[data-serving="true"] '
                f'tr[data-instance="{restarted.instance_id}"][data-health="SERVING"]',
                timeout=HEALTH_SHOWN_MILLIS + 18_000,  # the restart itself is not the page's
            )
        finally:
            await restarted.stop()
        errors = console.errors

    assert unhealthy in ("NOT_SERVING", "UNREACHABLE")
    assert held_until == held_at_the_end  # never renewed after the kill
    assert errors == []


async def test_a_caller_who_is_no_admin_sees_no_admin_view_and_the_feeds_need_a_token(
    auth_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        sign_in_violations = await console.serious_violations()
        await console.screenshot(tmp_path, "sign-in", full_page=False)
        await console.sign_in(auth_mesh.user_token)
        views = await console.views()
        who = await console.page.inner_text("#who-text")
        errors = console.errors
    anonymous = await auth_mesh.http.get("/console/api/me")
    mine = await auth_mesh.http.get(
        "/console/api/me", headers=auth_mesh.bearer(auth_mesh.user_token)
    )

    assert sign_in_violations == []
    assert views == ["mesh", "routes", "tools"]
    assert "admin" not in who
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert mine.json()["admin"] is False
    assert errors == []


async def test_a_person_signs_in_with_a_jwt_and_an_admin_record_shows_every_view(
    auth_mesh: Mesh, browser: Browser
) -> None:
    made = await auth_mesh.http.post(
        "/v1/users",
        headers=auth_mesh.bearer(auth_mesh.admin_token),
        json={"userId": "erin", "email": "erin@example.com", "role": "ROLE_ADMIN"},
    )
    assert made.status_code == 200, made.text
    token = person_jwt("erin", email="erin@example.com")
    auth_mesh.tokens.append(token)  # the leak scan looks for it in the data dir
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(token)
        views = await console.views()
        who = await console.page.inner_text("#who-text")
        kept = await console.page.evaluate("Object.values(sessionStorage)")
        await console.page.click("#sign-out")
        await console.page.wait_for_selector("#sign-in-form")
        forgotten = await console.page.evaluate("Object.values(sessionStorage)")
        errors = console.errors

    assert views == ["mesh", "routes", "mcp", "tools", "people", "events", "audit"]
    assert who == "user erin@example.com (admin)"
    assert kept == [token]
    assert forgotten == []
    assert errors == []


async def test_the_page_forbids_inline_code_and_other_origins(auth_mesh: Mesh) -> None:
    page = await auth_mesh.http.get("/console")
    script = await auth_mesh.http.get("/console/static/main.js")
    outside = await auth_mesh.http.get("/console/static/..%2f__init__.py")

    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.headers["content-type"].startswith("text/javascript")
    assert outside.status_code == 404


async def test_the_mesh_feed_sends_the_current_state_at_once(auth_mesh: Mesh) -> None:
    headers = {**auth_mesh.bearer(auth_mesh.user_token), "Accept": "text/event-stream"}
    async with auth_mesh.http.stream("GET", "/console/api/mesh", headers=headers) as response:
        lines = response.aiter_lines()
        first = await asyncio.wait_for(anext(lines), timeout=5)

    assert response.headers["content-type"].startswith("text/event-stream")
    assert first == "event: mesh"


async def test_the_routes_view_lists_every_route_and_method_with_its_access(
    auth_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    # The services every test of the module leaves in place (the Node plugin of the
    # killing test may be leaving the mesh while this one runs).
    stable = {"registry", "mcp-servers", *SERVICES}
    methods = [m for m in auth_mesh.gateway.catalog.methods() if m.service in stable]
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.user_token)
        await console.open("routes")
        await console.page.wait_for_selector('tr[data-route="GET /v1/users"]')
        http = set(
            await console.page.eval_on_selector_all(
                "tr[data-route]", "rows => rows.map(r => r.dataset.route)"
            )
        )
        grpc = set(
            await console.page.eval_on_selector_all(
                "tr[data-rpc]", "rows => rows.map(r => r.dataset.rpc)"
            )
        )
        list_users = await console.page.inner_text('tr[data-route="GET /v1/users"]')
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "routes", full_page=False)
        errors = console.errors

    table = build_routes(methods)
    assert {route.label for route in table.routes} <= http
    assert "GET /openapi.json" in http
    assert {method.path for method in methods} <= grpc
    assert "ADMIN" in list_users
    assert violations == []
    assert errors == []
