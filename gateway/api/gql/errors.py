"""Typed GraphQL errors: every error leaves the gateway with `extensions.code` (interfaces.md)."""

from __future__ import annotations

import logging
from typing import Any

from graphql import GraphQLError

from connectors.errors import UpstreamFailure
from gateway.core.auth import AuthError

log = logging.getLogger(__name__)

UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
NOT_FOUND = "NOT_FOUND"
BAD_USER_INPUT = "BAD_USER_INPUT"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
NOT_IMPLEMENTED = "NOT_IMPLEMENTED"
INTERNAL = "INTERNAL"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
OPERATION_NOT_SAFELISTED = "OPERATION_NOT_SAFELISTED"


class GatewayError(Exception):
    """An error a resolver raises on purpose; its code reaches the client as is."""

    def __init__(self, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = extensions


def forbidden(message: str) -> GatewayError:
    return GatewayError(FORBIDDEN, message)


def bad_input(message: str, **extensions: Any) -> GatewayError:
    return GatewayError(BAD_USER_INPUT, message, **extensions)


def not_found(message: str) -> GatewayError:
    return GatewayError(NOT_FOUND, message)


def not_implemented(what: str) -> GatewayError:
    return GatewayError(NOT_IMPLEMENTED, f"{what} is not available in this build of the gateway")


def request_error(code: str, message: str) -> dict[str, Any]:
    """An error raised before execution (no path, no locations of our own)."""
    return {"message": message, "extensions": {"code": code}}


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The JSON form of one error, with `extensions.code` always set; unknown failures are not leaked."""
    formatted: dict[str, Any] = dict(error.formatted)
    ext: dict[str, Any] = dict(formatted.get("extensions") or {})
    original = error.original_error
    if isinstance(original, GatewayError):
        ext.update(original.extensions, code=original.code)
    elif isinstance(original, UpstreamFailure):
        # "<system>: <what, with the HTTP status> (request id …)": the connector's own words, never the
        # upstream's (its body and headers are only logged, under that request id).
        formatted["message"] = str(original)
        ext["code"] = original.code
        ext["system"] = original.system
    elif isinstance(original, AuthError):
        ext["code"] = UNAUTHENTICATED
    elif original is not None:
        # A bug, not the caller's fault: log it whole, answer without internals.
        log.error("resolver failed at %s", error.path, exc_info=original)
        formatted["message"] = "internal error"
        ext["code"] = INTERNAL
    elif "code" not in ext:
        ext["code"] = GRAPHQL_VALIDATION_FAILED
    formatted["extensions"] = ext
    return formatted
