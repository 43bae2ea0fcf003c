"""Text and numbers the gateway can hold (records.md 1.1): the one JSON parser for every input, and the
one check of values however they were decoded.

What passes: valid Unicode with no U+0000 (PostgreSQL text cannot hold it) and no unpaired surrogate
(not Unicode; no encoder can write it out again), finite numbers (NaN and Infinity are not JSON, and
once stored would make every later answer invalid JSON), and bounded nesting (a deep value would exhaust
the recursion of whoever walks it next). Everything from outside — import lines, pushes, sync pages,
GraphQL variables and literals, cursors, unit files — goes through `loads`/`decode` and `problem`.

`decode` parses with orjson, which refuses NaN, Infinity, numbers beyond a double, invalid UTF-8 and
lone surrogates. When it refuses a text, Python's parser is asked whether the text is JSON but for such
values; if so they are decoded (never stored: `problem` finds them) so that the caller can reject the
one record holding them by the field's name and keep its neighbours. A text that is not JSON at all
raises `JSONInputError` with where it breaks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import orjson

MAX_DEPTH = 64  # containers inside containers, the outermost counted as 1: ample for any request here

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# What a field path may not show raw: besides the unholdable, any control or line-breaking character, so
# that a rejection reason is always one printable line (rejects files, logs, CLI summaries).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

Path = tuple[str | int, ...]


class JSONInputError(ValueError):
    """A text that is not JSON, or a value that breaks the rules above. `line`/`column` (1-based) say where
    a text breaks, `path` which value is bad (keys and list indexes from the top)."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 path: Path | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.line, self.column, self.path = line, column, path
        self.reason = reason or message  # without the position


def text_problem(text: str) -> str | None:
    """Why `text` cannot be held (None when it can): U+0000, or an unpaired surrogate."""
    bad = _BAD_TEXT.search(text)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return "contains U+0000 (NUL), which text may not hold"
    return f"contains an unpaired surrogate (U+{ord(bad.group()):04X}): not valid Unicode"


def problem(value: Any, max_depth: int = MAX_DEPTH) -> tuple[Path, str] | None:
    """The first value in `value` that breaks the rules, as (path, reason), or None. Walks iteratively
    (any depth is safe to check); keys are checked like strings; types other than JSON's are let be."""
    if isinstance(value, str):
        reason = text_problem(value)
        return None if reason is None else ((), reason)
    if isinstance(value, float) and not math.isfinite(value):
        return (), _number_reason(value)
    if not isinstance(value, dict | list):
        return None
    stack: list[tuple[Any, int, Path]] = [(value, 1, ())]
    while stack:
        container, depth, path = stack.pop()
        if depth > max_depth:
            return path, f"nests deeper than {max_depth} levels"
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(key, str) and _BAD_TEXT.search(key):
                return (*path, key), f"key {text_problem(key)}"
            if isinstance(item, str):
                if _BAD_TEXT.search(item):
                    return (*path, key), text_problem(item) or ""
            elif isinstance(item, float):
                if not math.isfinite(item):
                    return (*path, key), _number_reason(item)
            elif isinstance(item, dict | list):
                stack.append((item, depth + 1, (*path, key)))
    return None


def _number_reason(value: float) -> str:
    return f"is {value!r}, not a finite number (NaN and Infinity are not JSON)"


def dotted(path: Sequence[str | int]) -> str:
    """A path as records.md names fields: `events.0.data.reason`. Characters of a key that cannot be
    written out raw (U+0000, surrogates, control and line-breaking characters) are written as escapes
    (`k\\u0000`, `\\u000a`), so that the path is always one printable line."""
    return ".".join(printable(p) if isinstance(p, str) else str(p) for p in path)


def printable(text: str) -> str:
    """`text` with U+0000, surrogates, control and line-breaking characters written as `\\uXXXX` escapes:
    safe to put in a one-line message whatever the input held."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def decode(data: bytes | str) -> Any:
    """Parse one JSON text. Raises JSONInputError (with line and column) when it is not JSON; values JSON
    cannot hold but Python's parser can (NaN, Infinity, lone surrogates) are decoded for `problem` to find
    and name. Use `loads` unless the caller checks each part itself (records in a batch)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        strict = exc
    try:  # UTF-8 only (no byte-order mark, no UTF-16 guessing): only the values differ from orjson's
        return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        pass
    message, pos = strict.msg, strict.pos
    if message.startswith("depth limit exceeded"):
        message = "nests too deep"
    if isinstance(data, bytes) and "UTF-8" in message:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            message, pos = "not valid UTF-8", len(data[:bad.start].decode("utf-8"))
    line, column = _position(data, pos)
    raise JSONInputError(f"not valid JSON at line {line} column {column}: {message}", line=line, column=column,
                         reason=message)


def _position(data: bytes | str, pos: int) -> tuple[int, int]:
    """1-based line and column (in characters) of character `pos` of `data`."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON text and check all of it (`problem`): JSONInputError naming the position or the
    value's path otherwise."""
    value = decode(data)
    check(value, max_depth)
    return value


def check(value: Any, max_depth: int = MAX_DEPTH, where: str = "") -> None:
    """Raise JSONInputError naming the first bad value in `value` (see `problem`); `where` prefixes the
    path, e.g. "variables"."""
    found = problem(value, max_depth)
    if found is not None:
        path, reason = found
        name = dotted((where, *path) if where else path)
        raise JSONInputError(f"{name}: {reason}" if name else reason, path=path)
