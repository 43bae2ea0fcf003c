"""A circuit breaker per system, over a rolling window of call outcomes (after retries).

Closed: calls pass and their outcomes are counted. When the window holds at least `min_calls` and the share
of failures reaches `failure_rate`, it opens: calls are refused at once for `open_s`. Then it is half-open:
a few trial calls pass; a trial's success closes it (with a clean window), a failure opens it again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import IntEnum

from connectors import metrics


class CircuitState(IntEnum):
    # The values are those of the gateway_upstream_circuit_state gauge.
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        system: str,
        *,
        window_s: float,
        min_calls: int,
        failure_rate: float,
        open_s: float,
        half_open_trials: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.window_s = window_s
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.open_s = open_s
        self.half_open_trials = half_open_trials
        self._clock = clock
        self._calls: deque[tuple[float, bool]] = deque()  # (when, failed), oldest first
        self._failures = 0
        self._state = CircuitState.CLOSED
        self._opened_at = 0.0
        self._trials = 0  # trial calls in flight while half-open
        self._publish()

    @property
    def state(self) -> CircuitState:
        """The current state; an open circuit whose time is up reads as half-open."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.open_s:
            self._set(CircuitState.HALF_OPEN)
        return self._state

    def allow(self) -> bool:
        """May a call go out now? A True while half-open reserves a trial slot: pair it with `record`."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and self._trials < self.half_open_trials:
            self._trials += 1
            return True
        return False

    def record(self, failed: bool) -> None:
        """The outcome of a call that `allow` let through."""
        now = self._clock()
        if self._state is CircuitState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            if failed:
                self._open(now)
            else:
                self._reset()
                self._set(CircuitState.CLOSED)
            return
        if self._state is CircuitState.OPEN:
            return  # a call that started before the circuit opened: its outcome is old news
        self._calls.append((now, failed))
        self._failures += failed
        self._prune(now)
        if len(self._calls) >= self.min_calls and self._failures / len(self._calls) >= self.failure_rate:
            self._open(now)

    def release(self) -> None:
        """A call let through was abandoned (cancelled) before it had an outcome: free its trial slot."""
        if self._state is CircuitState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        while self._calls and self._calls[0][0] < horizon:
            _, failed = self._calls.popleft()
            self._failures -= failed

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._trials = 0
        self._reset()
        self._set(CircuitState.OPEN)

    def _reset(self) -> None:
        self._calls.clear()
        self._failures = 0

    def _set(self, state: CircuitState) -> None:
        self._state = state
        self._publish()

    def _publish(self) -> None:
        metrics.CIRCUIT_STATE.labels(self.system).set(int(self._state))
