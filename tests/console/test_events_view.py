"""The console's events view in headless Chromium: events appear in the live tail as
they are published, filtered by type and subject, and a dead letter is replayed from the
page (it leaves the list, and its event is published again). The feeds are for admins."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from playwright.async_api import Browser

from meshkit.events import build_event
from meshkit.events.deadletters import dead_letter_headers, dead_letter_subject
from meshkit.events.relay import MSG_ID
from tests.console.browser import ConsolePage
from tests.events.helpers import user_created
from tests.gateway.auth.mesh import Mesh

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]


async def _create_user(mesh: Mesh, email: str) -> str:
    created = await mesh.http.post(
        "/v1/users", json={"email": email}, headers=mesh.bearer(mesh.admin_token)
    )
    assert created.status_code == 200, created.text
    user_id: str = created.json()["user"]["userId"]
    return user_id


async def _follow(console: ConsolePage, type_pattern: str, subject: str = "") -> None:
    await console.page.fill("#event-filters input[name=type]", type_pattern)
    await console.page.fill("#event-filters input[name=subject]", subject)
    await console.page.evaluate("delete document.getElementById('tail-state').dataset.ready")
    await console.page.click("#event-filters button[type=submit]")
    await console.page.wait_for_selector("#tail-state[data-ready]")


async def test_an_event_published_appears_in_the_tail_filtered_by_type_and_subject(
    auth_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{auth_mesh.gateway.http_address}"
    watched = await _create_user(auth_mesh, "watched@example.com")
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.admin_token)
        await console.open("events")
        await _follow(console, "user.*")
        await _create_user(auth_mesh, "tailed@example.com")
        created = console.page.locator('tr[data-event-type="user.created"]', has_text="tailed@")
        await created.wait_for()

        await _follow(console, "user.*", f"users/{watched}")
        await _create_user(auth_mesh, "other@example.com")
        updated = await auth_mesh.http.patch(
            f"/v1/users/{watched}",
            params={"updateMask": "displayName"},
            json={"displayName": "Watched"},
            headers=auth_mesh.bearer(auth_mesh.admin_token),
        )
        assert updated.status_code == 200, updated.text
        await console.page.wait_for_selector('tr[data-event-type="user.updated"]')
        shown = await console.page.eval_on_selector_all(
            "#event-rows tr", "rows => rows.map(r => r.innerText)"
        )
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "events", full_page=False)
        errors = console.errors

    assert len(shown) == 1, shown
    assert f"users/{watched}" in shown[0]
    assert violations == []
    assert errors == []


async def test_a_dead_letter_is_replayed_from_the_page(auth_mesh: Mesh, browser: Browser) -> None:
    event = build_event(user_created("u-dlq"), source="/plugmesh/users", subject="users/u-dlq")
    client = await nats.connect(auth_mesh.nats.url)
    try:
        await client.jetstream().publish(
            dead_letter_subject("console-test", event.type),
            event.SerializeToString(),
            headers=dead_letter_headers(
                {MSG_ID: event.id},
                consumer="console-test",
                event_id=event.id,
                original_subject="plugmesh.events.user.created",
                original_sequence=1,
                attempts=5,
                error="ValueError: the test made it fail",
            ),
        )
    finally:
        await client.close()
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.admin_token)
        await console.open("events")
        await _follow(console, "user.created", "users/u-dlq")
        letter = console.page.locator(f'tr[data-letter="{event.id}"]')
        shown = await letter.inner_text()
        await console.page.get_by_role("button", name=f"Replay {event.id}").click()
        await console.page.wait_for_selector(f'tr[data-event-id="{event.id}"]')
        await console.page.wait_for_selector("#no-letters")
        errors = console.errors
    listed = await auth_mesh.http.get(
        "/console/api/deadletters", headers=auth_mesh.bearer(auth_mesh.admin_token)
    )

    assert "ValueError: the test made it fail" in shown
    assert event.id not in listed.text
    assert errors == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/console/api/events"),
        ("GET", "/console/api/deadletters"),
        ("POST", "/console/api/deadletters/1:replay"),
    ],
    ids=["tail", "dead-letters", "replay"],
)
async def test_the_event_feeds_are_refused_to_callers_who_are_no_admins(
    auth_mesh: Mesh, method: str, path: str
) -> None:
    plain = await auth_mesh.http.request(
        method, path, headers=auth_mesh.bearer(auth_mesh.user_token)
    )
    anonymous = await auth_mesh.http.request(method, path)

    assert plain.status_code == 403
    assert plain.json()["details"][0]["reason"] == "ADMIN_REQUIRED"
    assert anonymous.status_code == 401
