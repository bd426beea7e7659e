"""The explorer as an analyst shows it: amounts, dates, sources, disputes, phone and desk."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.demo import DEMO_TOKEN
from tests.system.browser import CHROMIUM, CHROMIUM_FLAGS, require_chromium

require_chromium()

REPORT_URL = "https://example.com/reports/baichuan-2023"
OUTLETS = [
    "South China Morning Post",
    "Maginative",
    "Unattributed web article",
    "Coinspeaker",
    "Interesting Engineering",
]
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")


def append_a_sourced_valuation(base: str) -> None:
    """Record a valuation of Baichuan whose source has an address."""
    envelope = {
        "event_id": str(uuid.uuid4()),
        "type": "valuation_reported",
        "effective_date": "2023-11-01",
        "source": {"name": "A report with a link", "url": REPORT_URL},
        "data": {
            "company_id": "baichuan",
            "valuation": {"value": "2000000000", "currency": "USD"},
            "basis": "reported",
        },
    }
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    answer = httpx.post(f"{base}/events", json=envelope, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text


async def overflow(page: Any) -> list[str]:
    """Return what sticks out: the page wider than the window, chart labels outside the chart."""
    found: list[str] = await page.evaluate(
        """() => {
          const out = [];
          const root = document.documentElement;
          if (root.scrollWidth > innerWidth) out.push(`page ${root.scrollWidth} > ${innerWidth}`);
          const chart = document.getElementById("chart");
          const width = chart.viewBox.baseVal.width;
          for (const text of chart.querySelectorAll("text")) {
            const box = text.getBBox();
            if (box.x < 0 || box.x + box.width > width) out.push(`chart label ${text.textContent}`);
          }
          return out;
        }"""
    )
    return found


@pytest.mark.parametrize("width", [390, 1440])
async def test_the_explorer_reads_well_on_a_phone_and_a_desk(
    demo: str, artifacts: Path, width: int
) -> None:
    from playwright.async_api import async_playwright, expect

    append_a_sourced_valuation(demo)
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console",
                lambda message: errors.append(message.text) if message.type == "error" else None,
            )
            await page.goto(f"{demo}/ui/#company=zhipu-ai&as_of=2023-12-01")
            await page.fill("#token", DEMO_TOKEN)
            await page.click("#token-form button")
            await expect(page.locator("body")).to_have_attribute("data-ready", "true")

            # amounts as people say them, alike in the state, the rounds, the timeline, the chart
            await expect(page.locator("#total-raised")).to_have_text("US$342 million")
            await expect(page.locator("#valuation")).to_contain_text("US$1 billion")
            await expect(page.locator("#rounds")).to_contain_text("CN¥2.5 billion")
            await expect(page.locator("#timeline")).to_contain_text("CN¥2.5 billion")
            await expect(page.locator("#chart")).to_contain_text("US$1 billion")
            exact = page.locator("#rounds td[title]", has_text="CN¥2.5 billion")
            await expect(exact).to_have_attribute("title", "CN¥2,500,000,000")
            # the chart has a date axis, in ISO months
            ticks = await page.locator("#chart .tick").all_text_contents()
            assert len(ticks) >= 2 and all(re.fullmatch(r"\d{4}-\d{2}", t) for t in ticks), ticks
            # dates in ISO, instants to the minute in UTC, the date field too
            await expect(page.locator("#as-of")).to_have_value("2023-12-01")
            await expect(page.locator("#answered")).to_contain_text("as of 2023-12-01")
            labels = await page.locator("#known-at option").all_text_contents()
            assert all(INSTANT.search(label) for label in labels[1:]), labels
            assert not any(re.search(r"\d\d\.\d{3}", label) for label in labels), labels
            timeline = await page.locator("#timeline").inner_text()
            assert INSTANT.search(timeline) and not re.search(r"\d\d:\d\d:\d\d", timeline)
            # investors by name
            await expect(page.locator("#investors")).to_contain_text("Alibaba Group")
            await expect(page.locator("#investors")).not_to_contain_text("alibaba,")
            assert await overflow(page) == []
            await page.screenshot(path=str(artifacts / f"explorer-{width}.png"), full_page=True)

            # each fact says how many sources report it; the raise's open to names and a dispute
            await expect(page.locator("#valuation summary")).to_have_text("2 sources")
            await expect(page.locator("#approvals summary")).to_have_text("4 sources")
            await expect(page.locator("#rules summary")).to_have_text("4 sources")
            raise_ = page.locator(".round-sources").last
            await raise_.locator(".sources summary").click()
            await expect(raise_.locator(".sources li")).to_have_count(5)
            for outlet in OUTLETS:
                await expect(raise_.locator(".sources")).to_contain_text(outlet)
            await raise_.locator(".dispute summary").click()
            chosen, other = raise_.locator(".dispute .side.chosen"), raise_.locator(".side.other")
            await expect(chosen).to_contain_text("shown: US$342 million (4 sources)")
            await expect(chosen.locator("li")).to_have_count(4)
            await expect(other).to_contain_text("other: US$341 million (1 source)")
            await expect(other.locator("li")).to_have_text([re.compile("^Interesting Engineering")])
            assert await overflow(page) == []
            await page.screenshot(
                path=str(artifacts / f"explorer-{width}-sources.png"), full_page=True
            )

            # a date typed as ISO is asked at once
            await page.fill("#as-of", "2023-09-14")
            await expect(page.locator("#valuation")).to_contain_text("US$500 million")

            # a source with an address is a link that opens apart
            await page.select_option("#company", "baichuan")
            link = page.locator(f'#timeline a[href="{REPORT_URL}"]')
            await expect(link).to_have_text("A report with a link")
            await expect(link).to_have_attribute("target", "_blank")
            await expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
            await page.fill("#as-of", "2023-12-01")
            await expect(page.locator("#valuation")).to_contain_text("US$2 billion")
            # a fact's source with an address links to it from the fact too
            await page.locator("#valuation summary").click()
            link = page.locator(f'#valuation .sources a[href="{REPORT_URL}"]')
            await expect(link).to_have_text("A report with a link")
            await expect(link).to_have_attribute("target", "_blank")
            await expect(link).to_have_attribute("rel", re.compile(r"\bnoopener\b"))
            assert await overflow(page) == []
            await page.screenshot(
                path=str(artifacts / f"explorer-{width}-baichuan.png"), full_page=True
            )
        finally:
            await browser.close()
    assert errors == []
