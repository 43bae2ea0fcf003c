"""Keyset cursors: one opaque encoding for every list ordered by (instant, id) — `complaints`,
`creditFlags`."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from gateway.core.jsontext import loads


def encode_cursor(at: datetime, key: str) -> str:
    """The position after the row at (`at`, `key`): URL-safe base64 of `["<RFC 3339>", "<key>"]`."""
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), key]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(instant, key) of a cursor `encode_cursor` made; ValueError("invalid cursor") for anything else."""
    try:
        at, key = loads(base64.urlsafe_b64decode(cursor.encode()))  # the strict parser: no U+0000 into SQL
        when = datetime.fromisoformat(at)
    except Exception:
        raise ValueError("invalid cursor") from None
    if when.tzinfo is None or not isinstance(key, str):
        raise ValueError("invalid cursor")
    return when, key
