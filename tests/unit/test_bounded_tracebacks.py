"""A logged exception is bounded in size, however deep its traceback or long its message."""

from __future__ import annotations

import json
import logging

import pytest

from service.http.logs import MAX_EXCEPTION_CHARS, JsonFormatter, TextFormatter


def _recurse(value: object) -> object:
    # two alternating frames, which the traceback module cannot fold into one repeated line
    return _recurse_again(value) if isinstance(value, list) else value


def _recurse_again(value: list[object]) -> object:
    return _recurse([value])


def record_of(exc: BaseException) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__)
    return logging.LogRecord("ledger", logging.ERROR, __file__, 1, "unhandled", None, exc_info)


def raised(make: object) -> BaseException:
    try:
        make()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("nothing was raised")


def deep_recursion() -> None:
    _recurse([])


def long_message() -> None:
    raise ValueError("x" * 1_000_000)


def long_chain() -> None:
    try:
        deep_recursion()
    except RecursionError as exc:
        raise RuntimeError("while handling") from exc


@pytest.mark.parametrize("make", [deep_recursion, long_message, long_chain])
def test_json_log_line_is_bounded(make: object) -> None:
    # given an exception from a very deep recursion, or with a huge message
    record = record_of(raised(make))
    # when it is formatted as a log line
    line = JsonFormatter().format(record)
    # then the line is bounded, and still says what was raised and where
    assert len(line) < MAX_EXCEPTION_CHARS + 1_000
    exception = json.loads(line)["exception"]
    assert "Traceback" in exception and "Error" in exception


@pytest.mark.parametrize("make", [deep_recursion, long_message])
def test_text_log_line_is_bounded(make: object) -> None:
    record = record_of(raised(make))
    assert len(TextFormatter().format(record)) < MAX_EXCEPTION_CHARS + 1_000
