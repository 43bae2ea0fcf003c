"""Complaint platform (全国12315平台): the changes feed the sync follows, and single records by id."""

from __future__ import annotations

from typing import Any

from connectors.base import BaseConnector
from connectors.models import ChangesPage

MAX_PAGE = 1000


def _record(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("a complaint record must be a JSON object")
    return data


class ComplaintsConnector(BaseConnector):
    system = "complaints"

    async def changes(self, cursor: str | None = None, limit: int = MAX_PAGE) -> ChangesPage:
        """Records changed after `cursor` (None: from the beginning), oldest change first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1..{MAX_PAGE}")
        params = {"limit": str(limit)}
        if cursor:
            params["cursor"] = cursor

        def parse(data: Any) -> ChangesPage:
            page = ChangesPage.model_validate(data)
            # A feed that does not advance would keep a follower asking for the same page forever.
            if page.has_more and page.next_cursor == (cursor or ""):
                raise ValueError("has_more with next_cursor unchanged: the feed does not advance")
            if len(page.items) > limit:
                raise ValueError(f"{len(page.items)} items for a limit of {limit}")
            return page

        page = await self._call("changes", "GET", "/api/v1/complaints/changes", parse, params=params)
        assert page is not None
        return page

    async def get(self, complaint_id: str) -> dict[str, Any] | None:
        """The platform's current record, raw (the gateway validates it), or None when it does not exist."""
        return await self._call(
            "get_complaint", "GET", f"/api/v1/complaints/{complaint_id}", _record, none_on_404=True
        )
