"""The ``Ledger-Served-By`` header: which database answered a read (primary or a standby)."""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from service.replicas import served_by

SERVED_BY_HEADER = "Ledger-Served-By"


async def stamp_served_by(message: Message, scope: Scope) -> None:
    """Name the database on the answer of every request that read through the read side."""
    if message["type"] != "http.response.start":
        return
    name = served_by.get()
    if name is not None:
        MutableScopeHeaders.from_message(message)[SERVED_BY_HEADER] = name
