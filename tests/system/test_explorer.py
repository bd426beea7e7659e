"""The explorer page in a real headless Chromium, against ``ledger serve --demo``.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright; ``.ci/run`` installs
it and sets ``LEDGER_REQUIRE_BROWSER=1``, so that there a missing browser fails the test
instead of skipping it. The screenshot is left in the test artifacts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from service.demo import DEMO_TOKEN

ROUNDS = "#rounds tbody tr:not(.round-sources)"
CHROMIUM = os.environ.get("LEDGER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).exists():
    if os.environ.get("LEDGER_REQUIRE_BROWSER"):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    pytest.skip("no Chromium here (apt-get install chromium)", allow_module_level=True)


async def test_the_explorer_follows_the_date_and_the_known_at_moment(
    demo: str, artifacts: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1400})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            await page.goto(f"{demo}/ui/")
            # asked for a token once
            await page.fill("#token", DEMO_TOKEN)
            await page.click("#token-form button")
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await page.select_option("#company", "zhipu-ai")

            # across the September valuation
            await page.fill("#as-of", "2023-09-14")
            await expect(page.locator("#valuation")).to_contain_text("US$500 million")
            await expect(page.locator(ROUNDS)).to_have_count(0)
            await page.fill("#as-of", "2023-09-15")
            await expect(page.locator("#valuation")).to_contain_text("US$1 billion")
            await expect(page.locator(ROUNDS)).to_have_count(1)
            await expect(page.locator("#chart circle")).to_have_count(2)

            # at the end of the year: the round, the approval, the tightened export rule
            await page.fill("#as-of", "2023-12-01")
            await expect(page.locator("#total-raised")).to_have_text("US$342 million")
            await expect(page.locator("#approvals")).to_contain_text("granted")
            await expect(page.locator("#rules")).to_contain_text("additional Nvidia AI chips")

            # the raise as it stood after the first report, then with all five
            raise_ = page.locator(".round-sources").last
            first = page.locator("#known-at option", has_text="round announced").nth(1)
            await page.select_option("#known-at", await first.get_attribute("value"))
            await expect(raise_.locator("summary").first).to_have_text("1 source")
            await expect(raise_.locator(".dispute")).to_have_count(0)
            await page.select_option("#known-at", "")
            await expect(raise_.locator("summary").first).to_have_text("5 sources")
            await expect(raise_.locator(".dispute summary")).to_have_text("disputed")
            await expect(page.locator("#total-raised")).to_have_text("US$342 million")

            await page.screenshot(path=str(artifacts / "explorer.png"), full_page=True)

            # after a reload the token is remembered and the link keeps the view
            await page.reload()
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")
            await expect(page.locator("#as-of")).to_have_value("2023-12-01")
            await expect(page.locator("#token-form")).to_be_hidden()
        finally:
            await browser.close()
    assert errors == []


async def test_the_explorer_is_public_and_locked_down(demo: str) -> None:
    async with httpx.AsyncClient(base_url=demo) as client:
        page = await client.get("/ui/")
        script = await client.get("/ui/explorer.js")
        home = await client.get("/")
        data = await client.get("/companies")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200
    assert home.status_code in (302, 307) and home.headers["location"] == "/ui/"
    assert data.status_code == 401  # the page is public; the data behind it is not
