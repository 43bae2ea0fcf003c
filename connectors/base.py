"""The resilient core every connector shares: one pooled `httpx.AsyncClient` per system, retries of
transient faults with full-jitter backoff (tenacity) inside a per-call time budget, `Retry-After`, a retry
budget and a circuit breaker per system, idempotency keys on writes, and typed errors and metrics.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC
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

log = logging.getLogger(__name__)

THROTTLE_STATUSES = frozenset({429, 503})  # may carry Retry-After
ERROR_BODY_BYTES = 8 * 1024  # read of a non-2xx body: enough for the log, never the whole of a hostile one
LOG_EXCERPT_CHARS = 500  # of an upstream body, in the log


def is_transient(status: int) -> bool:
    """Statuses a later attempt may not get: 408, 429 and every 5xx (external-systems.md names 500, 502, 503
    and 504; any other 5xx is a server fault too, never a refusal of the request)."""
    return status in (408, 429) or 500 <= status < 600


class _Transient(Exception):
    """An attempt failed in a way a later attempt may not: the only exception the retry loop retries.

    `broken`: the system answered 2xx with a body that breaks the contract; retried like a 5xx, and when the
    retries give up it is an `UpstreamError` (a broken upstream), not an `UpstreamUnavailable`. `detail` is
    for the log only (it may quote the upstream)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        broken: bool = False,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.broken = broken
        self.detail = detail
        self.stop_reason = "attempts exhausted"  # set by the retry loop when it gives up


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: delay-seconds (fractions accepted) or an HTTP date; None for an
    absent, empty or unusable value (not a number, not a date, a date no datetime can hold, not finite).
    Never raises: the value is whatever an upstream chose to send."""
    text = (value or "").strip()
    if not text or len(text) > 64:  # an HTTP date is 29 characters; nothing longer is a Retry-After
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
            if when.tzinfo is None:  # "-0000": HTTP dates are GMT
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - time.time()
        except Exception:  # noqa: BLE001 - TypeError, ValueError, OverflowError, IndexError: all mean "unusable"
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class BaseConnector:
    """A client of one external system. Subclasses add the operations of its contract.

    Whatever a system answers (any status, header, body or timing), a call ends in its parsed result or in
    one of the typed `UpstreamFailure`s; no other exception leaves `_call`."""

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
        `raw`: `parse(body bytes)`, which raises NotJson for a body that is not JSON.

        Raises UpstreamNotConfigured, UpstreamUnavailable (circuit open, or transient faults until the
        attempts, the time budget or the retry budget ran out) or UpstreamError (refused, or a broken answer
        that retries did not mend); each names the HTTP status and the X-Request-Id sent. What the system
        answered is logged (truncated, with that request id), never put in the error."""
        if not self.configured:
            metrics.REQUESTS.labels(self.system, operation, metrics.NOT_CONFIGURED).inc()
            raise UpstreamNotConfigured(self.system, "no URL configured for this system")
        if not self.circuit.allow():
            metrics.REQUESTS.labels(self.system, operation, metrics.CIRCUIT_OPEN).inc()
            raise UpstreamUnavailable(self.system, "circuit open: the system failed too often recently")

        started = time.monotonic()
        deadline = started + self.config.budget_s
        self.retry_budget.record_call()
        request_id = current_request_id()
        headers = {"X-Request-Id": request_id}
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
            message = f"{exc} ({exc.stop_reason})"
            # Down or overloaded is routine (and in the caller's error): INFO. A broken answer is news: WARNING.
            level = logging.WARNING if exc.broken else logging.INFO
            self._log_failure(level, operation, message, exc.status, request_id, exc.detail)
            if exc.broken:
                outcome = metrics.ERROR
                raise UpstreamError(self.system, message, status=exc.status, request_id=request_id) from None
            raise UpstreamUnavailable(self.system, message, status=exc.status, request_id=request_id) from None
        except UpstreamError as exc:
            outcome = metrics.ERROR
            # A 4xx says the request was wrong, not that the system is sick; anything else says it is.
            failed = exc.status is None or not 400 <= exc.status < 500
            raise
        except asyncio.CancelledError:
            outcome = None  # cancelled by our caller: says nothing about the system
            raise
        except Exception as exc:  # noqa: BLE001 - a fault below us must still end as a typed error
            outcome = metrics.ERROR
            log.exception("%s %s: unexpected failure (request id %s)", self.system, operation, request_id)
            raise UpstreamError(
                self.system, f"unexpected failure: {type(exc).__name__}", request_id=request_id
            ) from None
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
                reason = f"Retry-After {exc.retry_after:.3g}s does not fit the remaining {max(remaining, 0):.2f}s"
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
        request_id = headers["X-Request-Id"]
        try:
            # One clock for the whole exchange, body included: a server that drips its answer byte by byte
            # is as late as one that never answers.
            async with asyncio.timeout(timeout):
                request = self.client.build_request(method, path, params=params, content=content, headers=headers)
                resp = await self.client.send(request, stream=True)
                try:
                    body, problem = await self._read_body(resp)
                finally:
                    await resp.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise _Transient(f"no answer within {timeout:.3g}s") from None
        except (httpx.UnsupportedProtocol, httpx.ProxyError, httpx.InvalidURL) as exc:
            raise UpstreamError(self.system, f"cannot reach the configured URL ({type(exc).__name__})",
                                config_fault=True, request_id=request_id) from None
        except httpx.ProtocolError as exc:  # not HTTP as we know it; its text may quote the upstream's bytes
            raise _Transient(f"{type(exc).__name__}: the answer is not valid HTTP", detail=str(exc)) from None
        except httpx.TransportError as exc:  # refused, reset, closed mid-answer, truncated body
            raise _Transient(f"{type(exc).__name__}: {_our_text(exc) or 'connection failed'}") from None
        except httpx.HTTPError as exc:
            raise _Transient(f"unreadable answer: {type(exc).__name__}", broken=True, detail=str(exc)) from None
        return self._interpret(resp, body, problem, parse, none_on_404, request_id, raw)

    async def _read_body(self, resp: httpx.Response) -> tuple[bytes, str | None]:
        """The body, read no further than a 2xx needs (`max_body_bytes`: more is a broken answer) or than the
        log needs of any other answer; and what is wrong with it, if anything."""
        ok = 200 <= resp.status_code < 300
        limit = self.config.max_body_bytes if ok else ERROR_BODY_BYTES
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in resp.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    return b"".join(chunks)[:limit], (f"body over {limit} bytes" if ok else None)
        except httpx.DecodingError:
            return b"".join(chunks), "body does not decode as its Content-Encoding says"
        return b"".join(chunks), None

    def _interpret(
        self,
        resp: httpx.Response,
        body: bytes,
        problem: str | None,
        parse: Callable[[Any], T],
        none_on_404: bool,
        request_id: str,
        raw: bool = False,
    ) -> T | None:
        status = resp.status_code
        if 200 <= status < 300:
            if problem:
                raise _Transient(f"HTTP {status} {problem}", status=status, broken=True, detail=_excerpt(body))
            try:
                data = body if raw else json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the parser's stack
                raise _Transient(f"HTTP {status} body is not JSON", status=status, broken=True,
                                 detail=_excerpt(body)) from None
            try:
                return parse(data)
            except (NotJson, RecursionError):
                raise _Transient(f"HTTP {status} body is not JSON", status=status, broken=True,
                                 detail=_excerpt(body)) from None
            except Exception as exc:  # noqa: BLE001 - any failure to read a 2xx body is a contract break
                raise _Transient(f"HTTP {status} body breaks the contract: {_describe(exc)}", status=status,
                                 broken=True, detail=_excerpt(body)) from None
        if is_transient(status):
            retry_after = parse_retry_after(resp.headers.get("Retry-After")) if status in THROTTLE_STATUSES else None
            raise _Transient(f"HTTP {status}", status=status, retry_after=retry_after, detail=_excerpt(body))
        if status == 404 and none_on_404:
            return None
        if status in (401, 403):
            message, config_fault = f"HTTP {status}: credentials refused, check the token", True
        elif 300 <= status < 400:
            message, config_fault = f"HTTP {status}: redirects are not followed, check the URL", True
        elif 400 <= status < 500:
            message, config_fault = f"HTTP {status}: the request was refused", False
        else:
            message, config_fault = f"HTTP {status}: not an answer the contract knows", False
        self._log_failure(logging.WARNING, "", message, status, request_id, _excerpt(body))
        raise UpstreamError(self.system, message, status=status, config_fault=config_fault, request_id=request_id)

    def _log_failure(
        self, level: int, operation: str, message: str, status: int | None, request_id: str, detail: str | None
    ) -> None:
        """What the system answered, for operators: logged under the request id, never relayed to callers."""
        log.log(
            level,
            "%s: %s (request id %s)%s", self.system, message, request_id, f": {detail}" if detail else "",
            extra={"system": self.system, "operation": operation or None, "upstream_status": status,
                   "request_id": request_id},
        )

    # ------------------------------------------------------------------------------------------ batches

    async def _batched(
        self, ids: list[str], size: int, fetch: Callable[[list[str]], Awaitable[list[T]]]
    ) -> list[T]:
        """Run `fetch` over batches of at most `size` distinct ids concurrently; items in batch order."""
        unique = list(dict.fromkeys(ids))
        batches = [unique[i : i + size] for i in range(0, len(unique), size)]
        if not batches:
            return []
        if len(batches) == 1:  # the common case: no task to schedule, one turn of the loop sooner on the wire
            return await fetch(batches[0])
        results = await asyncio.gather(*(fetch(b) for b in batches), return_exceptions=True)
        out: list[T] = []
        for r in results:
            if isinstance(r, BaseException):
                raise r  # the first failed batch; the others finished (no half-cancelled requests)
            out.extend(r)
        return out


class NotJson(ValueError):
    """Raised by a `raw` parser for a body that is not JSON at all."""


def _describe(exc: Exception, limit: int = 200) -> str:
    """What in a 2xx body broke the contract, in the contract's own terms (field path and rule)."""
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        text = f"{'.'.join(map(str, err['loc'])) or 'body'}: {err['msg']} ({exc.error_count()} errors)"
    elif isinstance(exc, KeyError):
        text = f"missing field {exc}"
    else:
        text = str(exc) or type(exc).__name__
    return text[:limit]


def _excerpt(body: bytes, limit: int = LOG_EXCERPT_CHARS) -> str:
    """The start of an upstream body for the log: decoded leniently, control characters escaped, so that a
    body can neither flood the log nor forge lines in it."""
    text = body[: limit * 4].decode("utf-8", "replace")
    cut = text[:limit]
    escaped = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in cut)
    return escaped + ("…" if len(text) > limit or len(body) > limit * 4 else "") if escaped else "(empty body)"


def _our_text(exc: Exception, limit: int = 120) -> str:
    """A transport error's text, when it is the operating system's (refused, reset), never the upstream's."""
    return str(exc)[:limit]


__all__ = ["BaseConnector", "UpstreamFailure", "parse_retry_after"]
