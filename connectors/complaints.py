"""Complaint platform (全国12315平台): the changes feed the sync follows, and single records by id."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from connectors.base import BaseConnector, NotJson
from connectors.models import ChangesPage

MAX_PAGE = 1000


class _RawPage(msgspec.Struct):
    items: list[msgspec.Raw]
    next_cursor: str
    has_more: bool


_read_raw_page = msgspec.json.Decoder(_RawPage).decode


def _raw_page(body: bytes) -> ChangesPage:
    try:
        page = _read_raw_page(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            data = json.loads(body)
        except ValueError:
            raise NotJson from None
        return ChangesPage.model_validate(data)
    return ChangesPage.model_construct(
        items=[bytes(item) for item in page.items], next_cursor=page.next_cursor, has_more=page.has_more
    )


def _record(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("a complaint record must be a JSON object")
    return data


class ComplaintsConnector(BaseConnector):
    system = "complaints"

    async def changes(self, cursor: str | None = None, limit: int = MAX_PAGE) -> ChangesPage:
        """Records changed after `cursor` (None: from the beginning), oldest change first."""
        return await self._changes(cursor, limit, raw=False)

    async def changes_raw(self, cursor: str | None = None, limit: int = MAX_PAGE) -> ChangesPage:
        """`changes`, with each item left as its JSON text (bytes) for the caller to decode: bulk syncs decode
        records where they validate them. A page that only a lenient parser reads (numbers like NaN) comes
        back decoded, as `changes` gives it."""
        return await self._changes(cursor, limit, raw=True)

    async def _changes(self, cursor: str | None, limit: int, raw: bool) -> ChangesPage:
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        params = {"limit": str(limit)}
        if cursor:
            params["cursor"] = cursor

        def parse(data: Any) -> ChangesPage:
            page = _raw_page(data) if raw else ChangesPage.model_validate(data)
            # A feed that does not advance would keep a follower asking for the same page forever.
            if page.has_more and page.next_cursor == (cursor or ""):
                raise ValueError("has_more with next_cursor unchanged: the feed does not advance")
            if len(page.items) > limit:
                raise ValueError(f"{len(page.items)} items for a limit of {limit}")
            return page

        page = await self._call("changes", "GET", "/api/v1/complaints/changes", parse, params=params, raw=raw)
        assert page is not None
        return page

    async def get(self, complaint_id: str) -> dict[str, Any] | None:
        """The platform's current record, raw (the gateway validates it), or None when it does not exist."""
        return await self._call(
            "get_complaint", "GET", f"/api/v1/complaints/{complaint_id}", _record, none_on_404=True
        )
