"""The interactive API documentation renders the service's OpenAPI 3.1 document in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.system.browser import CHROMIUM, CHROMIUM_FLAGS, require_chromium

require_chromium()


async def test_the_docs_link_the_demo_prints_shows_every_operation(
    demo: str, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    from playwright.async_api import async_playwright, expect

    # given the link the demo prints
    printed = (artifacts / f"{request.node.name}-0-serve.log").read_text()  # the demo's own log
    link = re.search(r"API documentation at (\S+)", printed)
    assert link is not None, printed
    path = link.group(1).split(":", 2)[-1].partition("/")[2]  # the port may differ from the log
    errors: list[str] = []
    foreign: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1600})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            page.on("request", lambda request: foreign.append(request.url))
            # when a browser opens it
            await page.goto(f"{demo}/{path}")
            # then Swagger UI lists the operations, the write and the point-in-time read among them
            operations = page.locator(".opblock-summary")
            await expect(page.locator(".opblock-summary", has_text="/events").first).to_be_visible()
            append = page.locator(".opblock-post .opblock-summary", has_text="/events").first
            await expect(append).to_contain_text("POST")
            state = page.locator(
                ".opblock-get .opblock-summary", has_text="/companies/{company_id}"
            )
            await expect(state.first).to_contain_text("GET")
            assert await operations.count() >= 20
            await expect(page.locator("body")).not_to_contain_text("Unable to render")
            await expect(page.locator(".info .title")).to_contain_text("Investment ledger")
            await page.screenshot(path=str(artifacts / "api-docs.png"), full_page=False)
            # and an operation opens with its example body, highlighted
            await append.click()
            await expect(page.locator(".opblock-post .body-param__example").first).to_be_visible()
            await expect(page.locator(".opblock-post").first).to_contain_text("company_registered")
            await page.screenshot(path=str(artifacts / "api-docs-append.png"), full_page=False)
        finally:
            await browser.close()
    assert errors == []  # among them any request the page's policy refused
    assert [url for url in foreign if not url.startswith(demo)] == []  # nothing from elsewhere
