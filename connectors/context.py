"""The request id sent as `X-Request-Id`: set by the gateway per incoming request, generated when unset."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


def current_request_id() -> str:
    """The caller's request id, or a fresh one so every upstream request can still be traced."""
    return request_id_var.get() or uuid.uuid4().hex
