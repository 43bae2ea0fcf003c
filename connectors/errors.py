"""Typed failures of an upstream call; `.code` and `.system` feed GraphQL `extensions`."""

from __future__ import annotations


class UpstreamFailure(Exception):
    """Base of every connector error."""

    code = "UPSTREAM_FAILURE"

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system
        self.message = message
        self.status = status  # the HTTP status behind it, when there was one


class UpstreamUnavailable(UpstreamFailure):
    """Circuit open, retry budget spent, attempts or time budget exhausted: worth trying again later."""

    code = "UPSTREAM_UNAVAILABLE"


class UpstreamError(UpstreamFailure):
    """The system answered, but wrongly for us: a 4xx, or a 2xx body that breaks the contract. Not retried."""

    code = "UPSTREAM_ERROR"

    def __init__(
        self, system: str, message: str, *, status: int | None = None, config_fault: bool = False
    ) -> None:
        super().__init__(system, message, status=status)
        # 401/403: our token or URL is wrong, an operator has to act; retrying cannot help.
        self.config_fault = config_fault


class UpstreamNotConfigured(UpstreamFailure):
    """No URL set for this system: fields that need it resolve to null, nothing else breaks."""

    code = "UPSTREAM_NOT_CONFIGURED"
