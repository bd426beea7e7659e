"""Bounds on how deeply free-form JSON (metadata, a correction's payload) may nest."""

from __future__ import annotations

import re

# Objects and lists inside each other, the free-form object itself counting as one level.
# Deep enough for any honest annotation; shallow enough that nothing downstream (encoding,
# hashing, the NUL check, a client's own parser) meets the interpreter's recursion limit.
MAX_DEPTH = 32

# What matters to nesting in JSON text: strings (skipped whole, keys kept), brackets, commas.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]')


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Return whether ``value`` holds objects or lists nested more than ``limit`` levels."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:  # a walk with its own stack: the value may be deeper than Python recurses
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def deepest_path(body: bytes, limit: int) -> list[str | int]:
    """Return the path (keys and indexes) to the first value of ``body`` deeper than ``limit``.

    For a body too deep for the decoder itself: the JSON text is scanned, not parsed, so the
    walk needs no recursion. An empty path means no value is that deep.
    """
    path: list[str | int] = []
    arrays: list[bool] = []
    expect_key = False
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in (b"{", b"["):
            if len(arrays) > limit:
                return path
            arrays.append(token == b"[")
            path.append(0 if token == b"[" else "")
            expect_key = token == b"{"
        elif token in (b"}", b"]"):
            if arrays:
                arrays.pop()
                path.pop()
            expect_key = False
        elif token == b",":
            if arrays and arrays[-1]:
                path[-1] = int(path[-1]) + 1
            expect_key = bool(arrays) and not arrays[-1]
        elif expect_key:
            path[-1] = token[1:-1].decode("utf-8", "replace")
            expect_key = False
    return []
