"""Keyset cursors: one opaque encoding for every paginated list — URL-safe base64 of a JSON array of the
last row's sort key, e.g. `["2024-03-01T09:30:00+08:00", "C0001"]` for lists ordered by (instant, id)
(`complaints`, `creditFlags`, supervision orders), `["2024-03-12", "C0001", "C_ACCEPT"]` for the deadline
watch list."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from gateway.core.jsontext import loads


def encode_position(parts: list[str]) -> str:
    """A cursor for the sort key `parts` (strings)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def decode_position(cursor: str, length: int) -> list[str]:
    """The `length` strings of a cursor `encode_position` made; ValueError("invalid cursor") otherwise."""
    try:
        parts = loads(base64.urlsafe_b64decode(cursor.encode()))  # the strict parser: no U+0000 into SQL
    except Exception:
        raise ValueError("invalid cursor") from None
    if not isinstance(parts, list) or len(parts) != length or not all(isinstance(p, str) for p in parts):
        raise ValueError("invalid cursor")
    return parts


def encode_cursor(at: datetime, key: str) -> str:
    """The position after the row at (`at`, `key`) of a list ordered by (instant, id)."""
    return encode_position([at.isoformat(), key])


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(instant, key) of a cursor `encode_cursor` made; ValueError("invalid cursor") for anything else."""
    at, key = decode_position(cursor, 2)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise ValueError("invalid cursor") from None
    if when.tzinfo is None:
        raise ValueError("invalid cursor")
    return when, key
