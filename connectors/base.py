"""The resilient core every connector shares: one pooled `httpx.AsyncClient` per system, retries of
transient faults with full-jitter backoff (tenacity) inside a per-call time budget, `Retry-After`, a retry
budget and a circuit breaker per system, idempotency keys on writes, and typed errors and metrics.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

import httpx
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from connectors import metrics
from connectors.circuit import CircuitBreaker, CircuitState
from connectors.config import ConnectorConfig, System
from connectors.context import current_request_id
from connectors.errors import UpstreamError, UpstreamFailure, UpstreamNotConfigured, UpstreamUnavailable
from connectors.retry_budget import RetryBudget
from connectors.transport import ShardedTransport

T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLE_STATUSES = frozenset({429, 503})  # may carry Retry-After


class _Transient(Exception):
    """An attempt failed in a way a later attempt may not: the only exception the retry loop retries."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.stop_reason = "attempts exhausted"  # set by the retry loop when it gives up


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds)


class BaseConnector:
    """A client of one external system. Subclasses add the operations of its contract."""

    system: ClassVar[System]

    def __init__(self, config: ConnectorConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.circuit = CircuitBreaker(
            self.system,
            window_s=config.circuit_window_s,
            min_calls=config.circuit_min_calls,
            failure_rate=config.circuit_failure_rate,
            open_s=config.circuit_open_s,
            half_open_trials=config.half_open_trials,
        )
        self.retry_budget = RetryBudget(config.retry_budget, min_per_s=config.min_retries_per_s)
        self._backoff = wait_random_exponential(multiplier=config.backoff_base_s, max=config.backoff_max_s)

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def configured(self) -> bool:
        return self.config.configured

    @property
    def circuit_state(self) -> CircuitState:
        return self.circuit.state

    @property
    def client(self) -> httpx.AsyncClient:
        # Created on first use so that it binds to the event loop that uses it.
        if self._client is None:
            assert self.config.url
            headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
            self._client = httpx.AsyncClient(
                base_url=self.config.url,
                headers=headers,
                timeout=httpx.Timeout(self.config.timeout_s),
                transport=self._transport or ShardedTransport(self.config.max_connections),
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------------ calls

    async def _call(
        self,
        operation: str,
        method: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        none_on_404: bool = False,
        raw: bool = False,
    ) -> T | None:
        """One logical call: attempts, waits and bookkeeping. Returns `parse(json)` (None on 404 if asked);
        `raw`: `parse(body bytes)`, which raises ValueError for a body that is not JSON."""
        if not self.configured:
            metrics.REQUESTS.labels(self.system, operation, metrics.NOT_CONFIGURED).inc()
            raise UpstreamNotConfigured(self.system, "no URL configured for this system")
        if not self.circuit.allow():
            metrics.REQUESTS.labels(self.system, operation, metrics.CIRCUIT_OPEN).inc()
            raise UpstreamUnavailable(self.system, "circuit open: the system failed too often recently")

        started = time.monotonic()
        deadline = started + self.config.budget_s
        self.retry_budget.record_call()
        headers = {"X-Request-Id": current_request_id()}
        content: bytes | None = None
        if body is not None:
            # Encoded once: every attempt sends the very same bytes under the very same key.
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex

        outcome: str | None = metrics.UNAVAILABLE
        failed = True
        try:
            result: T | None = await self._retrying(deadline)(
                self._attempt, method, path, params, content, headers, parse, deadline, none_on_404, raw
            )
            outcome, failed = metrics.OK, False
            return result
        except _Transient as exc:
            raise UpstreamUnavailable(self.system, f"{exc} ({exc.stop_reason})", status=exc.status) from None
        except UpstreamError as exc:
            outcome = metrics.ERROR
            # A 4xx says the request was wrong, not that the system is sick; a bad 2xx body or odd 5xx does.
            failed = exc.status is None or not 400 <= exc.status < 500
            raise
        except asyncio.CancelledError:
            outcome = None  # cancelled by our caller: says nothing about the system
            raise
        finally:
            if outcome is None:
                self.circuit.release()
            else:
                self.circuit.record(failed)
                metrics.REQUESTS.labels(self.system, operation, outcome).inc()
                metrics.DURATION.labels(self.system, operation).observe(time.monotonic() - started)

    def _retrying(self, deadline: float) -> AsyncRetrying:
        def wait(rs: RetryCallState) -> float:
            exc = rs.outcome.exception() if rs.outcome else None
            if isinstance(exc, _Transient) and exc.retry_after is not None:
                return exc.retry_after
            return float(self._backoff(rs))

        def stop(rs: RetryCallState) -> bool:
            exc = rs.outcome.exception() if rs.outcome else None
            assert isinstance(exc, _Transient)
            remaining = deadline - time.monotonic()
            sleep = rs.upcoming_sleep
            reason = None
            if rs.attempt_number >= self.config.attempts:
                reason = f"{rs.attempt_number} attempts failed"
            elif exc.retry_after is not None and exc.retry_after >= remaining:
                reason = f"Retry-After {exc.retry_after:g}s does not fit the remaining {max(remaining, 0):.2f}s"
            elif sleep >= remaining:
                reason = f"time budget of {self.config.budget_s:g}s spent"
            elif not self.retry_budget.try_retry():
                metrics.RETRY_BUDGET_REFUSALS.labels(self.system).inc()
                reason = "retry budget spent"
            if reason is not None:
                exc.stop_reason = reason
                return True
            metrics.RETRIES.labels(self.system).inc()
            return False

        return AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            wait=wait,
            stop=stop,
            reraise=True,
            sleep=asyncio.sleep,
        )

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: dict[str, str],
        parse: Callable[[Any], T],
        deadline: float,
        none_on_404: bool,
        raw: bool = False,
    ) -> T | None:
        timeout = min(self.config.timeout_s, deadline - time.monotonic())
        if timeout <= 0:
            raise _Transient("time budget spent before the attempt")
        try:
            async with asyncio.timeout(timeout):
                resp = await self.client.request(method, path, params=params, content=content, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            raise _Transient(f"no answer within {timeout:.3g}s") from None
        except (httpx.UnsupportedProtocol, httpx.ProxyError, httpx.InvalidURL) as exc:
            raise UpstreamError(self.system, f"cannot reach the configured URL: {exc}", config_fault=True) from None
        except httpx.TransportError as exc:  # refused, reset, closed mid-answer, truncated body
            raise _Transient(f"{type(exc).__name__}: {exc or 'connection failed'}") from None
        except httpx.HTTPError as exc:  # e.g. a body that does not decode as its Content-Encoding says
            raise UpstreamError(self.system, f"unreadable answer: {type(exc).__name__}: {exc}") from None
        return self._interpret(resp, parse, none_on_404, raw)

    def _interpret(
        self, resp: httpx.Response, parse: Callable[[Any], T], none_on_404: bool, raw: bool = False
    ) -> T | None:
        status = resp.status_code
        if 200 <= status < 300:
            try:
                data = resp.content if raw else json.loads(resp.content)
            except ValueError:
                raise UpstreamError(self.system, f"HTTP {status} body is not JSON", status=status) from None
            try:
                return parse(data)
            except NotJson:
                raise UpstreamError(self.system, f"HTTP {status} body is not JSON", status=status) from None
            except Exception as exc:  # noqa: BLE001 - any failure to read a 2xx body is a contract break
                detail = _describe(exc)
                raise UpstreamError(
                    self.system, f"HTTP {status} body breaks the contract: {detail}", status=status
                ) from None
        if status == 429 or status in TRANSIENT_STATUSES:
            retry_after = parse_retry_after(resp.headers.get("Retry-After")) if status in THROTTLE_STATUSES else None
            raise _Transient(f"HTTP {status}", status=status, retry_after=retry_after)
        if status == 404 and none_on_404:
            return None
        if status in (401, 403):
            raise UpstreamError(
                self.system, f"HTTP {status}: credentials refused, check the token", status=status, config_fault=True
            )
        raise UpstreamError(self.system, f"HTTP {status}: {_excerpt(resp)}", status=status)

    # ------------------------------------------------------------------------------------------ batches

    async def _batched(
        self, ids: list[str], size: int, fetch: Callable[[list[str]], Awaitable[list[T]]]
    ) -> list[T]:
        """Run `fetch` over batches of at most `size` distinct ids concurrently; items in batch order."""
        unique = list(dict.fromkeys(ids))
        batches = [unique[i : i + size] for i in range(0, len(unique), size)]
        if not batches:
            return []
        results = await asyncio.gather(*(fetch(b) for b in batches), return_exceptions=True)
        out: list[T] = []
        for r in results:
            if isinstance(r, BaseException):
                raise r  # the first failed batch; the others finished (no half-cancelled requests)
            out.extend(r)
        return out


class NotJson(ValueError):
    """Raised by a `raw` parser for a body that is not JSON at all."""


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        return f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']} ({exc.error_count()} errors)"
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    return str(exc) or type(exc).__name__


def _excerpt(resp: httpx.Response, limit: int = 200) -> str:
    text = resp.text.strip().replace("\n", " ")
    return text[:limit] or resp.reason_phrase


__all__ = ["BaseConnector", "UpstreamFailure", "parse_retry_after"]
