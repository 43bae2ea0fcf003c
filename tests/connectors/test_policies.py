"""The circuit breaker, the retry budget and Retry-After parsing on a fake clock: the window edges that
real-time tests cannot reach quickly."""

from __future__ import annotations

import email.utils
import time

from connectors.base import parse_retry_after
from connectors.circuit import CircuitBreaker, CircuitState
from connectors.retry_budget import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock) -> CircuitBreaker:
    return CircuitBreaker("credit", window_s=30, min_calls=10, failure_rate=0.5, open_s=15, clock=clock)


def test_circuit_needs_min_calls_and_rate() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(9):
        cb.record(True)  # 9 failures: rate 100 %, but fewer than 10 calls
    assert cb.state is CircuitState.CLOSED
    cb.record(False)  # 10 calls, 9 failed
    assert cb.state is CircuitState.OPEN


def test_circuit_window_forgets_old_failures() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(6):
        cb.record(True)
    clock.now += 31  # those six fall out of the 30 s window
    for _ in range(9):
        cb.record(False)
    cb.record(True)
    assert cb.state is CircuitState.CLOSED


def test_circuit_open_half_open_cycle() -> None:
    clock = Clock()
    cb = breaker(clock)
    for _ in range(10):
        cb.record(True)
    assert not cb.allow()
    clock.now += 14.9
    assert cb.state is CircuitState.OPEN
    clock.now += 0.2
    assert cb.state is CircuitState.HALF_OPEN
    assert cb.allow() and not cb.allow()  # one trial at a time
    cb.release()  # the trial was cancelled: the slot is free again
    assert cb.allow()
    cb.record(False)
    assert cb.state is CircuitState.CLOSED and cb.allow()


def test_retry_budget_share_and_floor() -> None:
    clock = Clock()
    budget = RetryBudget(0.2, min_per_s=3, clock=clock)
    for _ in range(3):
        assert budget.try_retry()  # the floor: 3 a second with no calls at all
    assert not budget.try_retry()
    clock.now += 1.01
    for _ in range(100):
        budget.record_call()
    granted = sum(budget.try_retry() for _ in range(50))
    assert granted == 17  # 20 % of 100 calls, less the 3 retries still in the 10 s window
    clock.now += 10.1  # everything expires
    assert budget.try_retry()


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (parse_retry_after(later) or 0) <= 31
