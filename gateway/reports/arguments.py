"""The KPI report's arguments as text (a URL's query, the evaluators' form), parsed once for every edge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gateway.core.time import parse_instant, required_date
from gateway.reports.build import ReportError

_WHOLE = re.compile(r"-?[0-9]{1,9}")


def report_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """`from`, `to` (required, YYYY-MM-DD), `level` (a whole number), `as_of` (RFC 3339 with offset) and
    `scheme` (optional texts; empty means absent) as the keywords of `build_report` (`date_from`, `date_to`,
    `level`, `as_of`, `scheme`). Raises ReportError (BAD_USER_INPUT) naming the first bad argument."""
    level_text = values.get("level") or None
    if level_text is not None and not _WHOLE.fullmatch(level_text.strip()):  # ASCII: int("²") fails
        raise ReportError(f"level: {level_text!r} is not a whole number")
    as_of: datetime | None = None
    if values.get("as_of"):
        try:
            as_of = parse_instant(values["as_of"])
        except ValueError as exc:
            raise ReportError(f"as_of: {exc}") from None
    return {
        "level": int(level_text) if level_text is not None else None,
        "date_from": required_date(values, "from", ReportError),
        "date_to": required_date(values, "to", ReportError),
        "as_of": as_of,
        "scheme": values.get("scheme") or None,
    }
