"""Headless Chromium for the browser tests: Debian's, driven by Playwright.

``.ci/run`` installs Chromium and sets ``LEDGER_REQUIRE_BROWSER=1``, so that there a missing
browser fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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


def require_chromium() -> None:
    """Skip the calling test module without Chromium (fail instead when CI demands one)."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("LEDGER_REQUIRE_BROWSER"):
        raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    pytest.skip("no Chromium here (apt-get install chromium)", allow_module_level=True)
