"""Reading the "what may this caller do?" parts of a console page: the tools it lists and
the explainer's answer."""

from __future__ import annotations

from tests.console.browser import ConsolePage

__all__ = ["explain", "may_call"]


async def may_call(console: ConsolePage) -> list[str]:
    """The ``server/tool`` rows of the "may call" table, sorted."""
    await console.page.wait_for_selector("#may-call")
    found: list[str] = await console.page.eval_on_selector_all(
        "tr[data-may-call]", "rows => rows.map(r => r.dataset.mayCall)"
    )
    return sorted(found)


async def explain(console: ConsolePage, target: str) -> tuple[str, str]:
    """``(data-allowed, text)`` of the explainer's answer for ``target``."""
    await console.page.fill("#explain-target", target)
    await console.page.click("#explain button[type=submit]")
    answer = console.page.locator("#explain-answer[data-allowed]")
    await answer.wait_for()
    allowed = await answer.get_attribute("data-allowed") or ""
    text = await answer.inner_text()
    await console.page.evaluate(
        "document.getElementById('explain-answer').removeAttribute('data-allowed')"
    )
    return allowed, text
