"""Typed failures of an upstream call; `.code`, `.system`, `.status` and `.request_id` feed GraphQL `extensions`.

The message of every error is the gateway's own text: the system, what went wrong, the HTTP status and the
request id. Nothing an upstream sent (its body, a header, a protocol error quoting its bytes) is ever part
of it, since the message reaches callers (interfaces.md 1.1: upstream bodies stay inside); that goes to
the log, under the same request id (`connectors.base`).
"""

from __future__ import annotations


class UpstreamFailure(Exception):
    """Base of every connector error."""

    code = "UPSTREAM_FAILURE"

    def __init__(
        self, system: str, message: str, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        suffix = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{system}: {message}{suffix}")
        self.system = system
        self.message = message
        self.status = status  # the HTTP status behind it, when there was one
        self.request_id = request_id  # the X-Request-Id the failed call was sent with


class UpstreamUnavailable(UpstreamFailure):
    """Circuit open, retry budget spent, attempts or time budget exhausted: worth trying again later."""

    code = "UPSTREAM_UNAVAILABLE"


class UpstreamError(UpstreamFailure):
    """The system answered, but wrongly for us: a 4xx, an unknown status, or (after retries) a 2xx body that
    breaks the contract."""

    code = "UPSTREAM_ERROR"

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        config_fault: bool = False,
        request_id: str | None = None,
    ) -> None:
        super().__init__(system, message, status=status, request_id=request_id)
        # 401/403, a redirect, a bad URL: our token or URL is wrong, an operator has to act; retrying cannot help.
        self.config_fault = config_fault

    @property
    def refused(self) -> bool:
        """The system refused the request itself for good (a 4xx other than 401, 403, 408 and 429): sending
        the same request again cannot help (interfaces.md 1.1, dead letters)."""
        return self.status is not None and 400 <= self.status < 500 and not self.config_fault \
            and self.status not in (408, 429)


class UpstreamNotConfigured(UpstreamFailure):
    """No URL set for this system: fields that need it resolve to null, nothing else breaks."""

    code = "UPSTREAM_NOT_CONFIGURED"
