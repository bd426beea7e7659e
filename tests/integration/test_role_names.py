"""``ledger grants`` takes only a plain role name."""

from __future__ import annotations

import pytest

from tests.support import ledger


@pytest.mark.parametrize(
    "name", ["x; DROP TABLE events", "public", "current_user", "pg_monitor", "app\n", "App"]
)
def test_role_names_are_checked(name: str) -> None:
    result = ledger(None, "grants", name)
    assert result.returncode == 2 and "not a plain role name" in result.stderr
