"""Rows in PostgreSQL's binary COPY format, built in plain Python.

Bulk loads encode their rows where the records are decoded (worker processes), so that the process that
talks to the database only forwards bytes: `COPY … FROM STDIN (FORMAT binary)` of the concatenated rows,
framed by `HEADER` and `TRAILER` (`copy_source`). Binary is what PostgreSQL parses fastest: no text to
scan for timestamps and escapes.

Column kinds: `text` (varchar, text), `json` (an already serialised JSON text, for `json` columns), `ts`
(an aware datetime, for timestamptz), `date`, `bool`, `int2`, `int4`, `int8`. None is NULL in every kind.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2  # signature, flags, header extension length
TRAILER = b"\xff\xff"
NULL = b"\xff\xff\xff\xff"

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
_US = timedelta(microseconds=1)
_I32 = struct.Struct(">i").pack
_TS = struct.Struct(">iq").pack  # length 8, then microseconds since 2000-01-01 UTC
_DATE = struct.Struct(">ii").pack  # length 4, then days since 2000-01-01
_INT2 = struct.Struct(">ih").pack
_INT4 = struct.Struct(">ii").pack
_INT8 = struct.Struct(">iq").pack
_TRUE, _FALSE = b"\x00\x00\x00\x01\x01", b"\x00\x00\x00\x01\x00"

Encoder = Callable[[Any], bytes]


def _text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    return _I32(len(data)) + data


def _ts(value: datetime | None) -> bytes:
    return NULL if value is None else _TS(8, (value - _PG_EPOCH) // _US)


def _date(value: date | None) -> bytes:
    return NULL if value is None else _DATE(4, value.toordinal() - _PG_EPOCH_DAY)


def _bool(value: bool | None) -> bytes:
    return NULL if value is None else (_TRUE if value else _FALSE)


def _int2(value: int | None) -> bytes:
    return NULL if value is None else _INT2(2, value)


def _int4(value: int | None) -> bytes:
    return NULL if value is None else _INT4(4, value)


def _int8(value: int | None) -> bytes:
    return NULL if value is None else _INT8(8, value)


ENCODERS: dict[str, Encoder] = {
    "text": _text, "json": _text, "ts": _ts, "date": _date, "bool": _bool, "int2": _int2, "int4": _int4,
    "int8": _int8,
}


class CachedText:
    """`text` encoding that remembers the values it has seen: codes and enumerations repeat in every row."""

    def __init__(self, limit: int = 100_000) -> None:
        self.cache: dict[str, bytes] = {}
        self.limit = limit

    def __call__(self, value: str | None) -> bytes:
        if value is None:
            return NULL
        hit = self.cache.get(value)
        if hit is None:
            hit = _text(value)
            if len(self.cache) < self.limit:
                self.cache[value] = hit
        return hit


class RowFormat:
    """The binary layout of one table's rows: `encode(row)` for a tuple of values in column order."""

    def __init__(self, table: str, columns: Sequence[tuple[str, str]], cached: Iterable[str] = ()) -> None:
        self.table = table
        self.columns = tuple(name for name, _ in columns)
        shared = CachedText()
        keep = set(cached)
        self.encoders: tuple[Encoder, ...] = tuple(
            shared if name in keep else ENCODERS[kind] for name, kind in columns
        )
        self.count = struct.pack(">h", len(columns))

    def encode(self, row: Sequence[Any]) -> bytes:
        parts = [self.count]
        parts += [enc(value) for enc, value in zip(self.encoders, row, strict=True)]
        return b"".join(parts)


async def copy_source(*chunks: bytes | memoryview) -> AsyncIterator[bytes | memoryview]:
    """HEADER, the rows, TRAILER: the `source` of asyncpg's `copy_to_table(..., format="binary")`."""
    yield HEADER
    for chunk in chunks:
        if chunk:
            yield chunk
    yield TRAILER
