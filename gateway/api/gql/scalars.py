"""The `DateTime` scalar of the schema: every instant out is RFC 3339 in Asia/Shanghai, `+08:00`
(interfaces.md 1.1, "Instants"), whatever offset it arrived with or was stored in.

It keeps graphene's name, so the schema has one `DateTime`; a field declared with `graphene.DateTime` instead
of this one makes the schema fail to build ("different types with the same name"), which keeps every instant
on this path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import graphene
from graphql import GraphQLError

from gateway.core.time import as_utc, format_instant


class DateTime(graphene.DateTime):
    """An instant, RFC 3339 with the `+08:00` offset (Asia/Shanghai), e.g. `2024-03-01T09:30:00+08:00`. As an
    argument, any RFC 3339 instant with an offset."""

    class Meta:
        name = "DateTime"

    @staticmethod
    def serialize(value: Any) -> str:
        if isinstance(value, str):  # documents built as JSON (the KPI report) carry their instants as text
            value = dt.datetime.fromisoformat(value)
        if not isinstance(value, dt.datetime):
            raise GraphQLError(f"DateTime cannot represent value: {value!r}")
        return format_instant(as_utc(value))  # naive values are the database's UTC
