"""Structured logs: one JSON object per line, each carrying the request id it belongs to.

Every HTTP request gets an id (the caller's ``X-Request-ID`` when it is a sensible one, else a
new one), echoed in the response's ``X-Request-ID`` header and attached to every log line
written while the request is handled, so a client's report can be matched with the logs.
Requests are logged once each, with method, route, status and duration; never a header, a
body or a query string, so tokens, secrets and payloads stay out of the logs.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import re
import secrets
import sys
import time
import traceback
from typing import Any

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
access = logging.getLogger("ledger.access")

# Anything a log call attaches that JSON cannot hold is written as its repr, not dropped.
_fallback = msgspec.json.Encoder(enc_hook=repr)
# The record's own attributes, and uvicorn's coloured duplicate of the message.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",
}

# A traceback is for the operator, yet a client's input may reach a deep recursion (a thousand
# frames, some 250 KB) or put itself in a message: each logged exception keeps the last frames
# of each exception in its chain, and at most this many characters.
MAX_EXCEPTION_CHARS = 8_000
_FRAMES = 30


def bounded_traceback(exc_info: Any) -> str:
    """Format an exception's traceback, cut to its last frames and a bounded length."""
    exc = exc_info[1]
    if exc is None:
        return ""
    text = "".join(traceback.format_exception(exc, limit=-_FRAMES)).rstrip("\n")
    if len(text) <= MAX_EXCEPTION_CHARS:
        return text
    half = MAX_EXCEPTION_CHARS // 2
    return f"{text[:half]}\n[{len(text) - 2 * half} characters left out]\n{text[-half:]}"


class TextFormatter(logging.Formatter):
    """Format a record as plain text, with a bounded traceback."""

    def formatException(self, ei: Any) -> str:
        """Return the record's traceback, bounded."""
        return bounded_traceback(ei)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON object on one line."""
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _fallback.encode(line).decode()

    def formatException(self, ei: Any) -> str:
        """Return the record's traceback, bounded."""
        return bounded_traceback(ei)


def configure(level: str, form: str = "json") -> None:
    """Send every log line to standard error, as JSON (``form="json"``) or as plain text."""
    handler = logging.StreamHandler(sys.stderr)
    if form == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("pgserver", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _id_of(scope: Scope) -> str:
    given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
    text = given.decode("latin-1")
    return text if _ACCEPTABLE_ID.fullmatch(text) else secrets.token_hex(16)


def begin(scope: Scope) -> None:
    """Give a routed request its id and start time, for the log lines it writes.

    Called by the first middleware layer (service/http/limits.py) rather than by a layer of its
    own: every layer costs each request a call and a scope check.
    """
    state = scope.setdefault("state", {})
    state[_ID] = rid = _id_of(scope)
    state[_STARTED] = time.perf_counter()
    request_id.set(rid)


_ID = "ledger_request_id"
_STARTED = "ledger_started"


async def stamp_response(message: Message, scope: Scope) -> None:
    """Echo the request id on every response (errors and unknown routes too) and log it once.

    A ``before_send`` hook: it sees every response the application sends, including those of
    the exception handlers, which run outside any middleware.
    """
    if message["type"] != "http.response.start":
        return
    state = scope.setdefault("state", {})
    rid = state.get(_ID)
    if rid is None:  # no route matched: the middleware did not run
        rid = state[_ID] = _id_of(scope)
        request_id.set(rid)
    MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = rid
    if access.isEnabledFor(logging.INFO):
        method = str(scope.get("method", ""))
        extra: dict[str, Any] = {
            "method": method,
            "path": scope["path"],
            "status": message["status"],
        }
        if _STARTED in state:
            extra["duration_ms"] = round((time.perf_counter() - state[_STARTED]) * 1000, 3)
        access.info("%s %s %s", method, scope["path"], message["status"], extra=extra)
