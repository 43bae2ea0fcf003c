"""A retry budget per system (after Finagle's RetryBudget): retries may add at most `ratio` of the calls
of the last `window_s` seconds, so a struggling system is not buried in retries; `min_per_s` retries a
second are always allowed so that a quiet system still gets its few retries."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RetryBudget:
    def __init__(
        self,
        ratio: float,
        *,
        min_per_s: float = 3.0,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.window_s = window_s
        self._clock = clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_call(self) -> None:
        self._calls.append(self._clock())

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it."""
        now = self._clock()
        horizon = now - self.window_s
        for q in (self._calls, self._retries):
            while q and q[0] < horizon:
                q.popleft()
        if len(self._retries) + 1 <= self.ratio * len(self._calls) or self._last_second(now) < self.min_per_s:
            self._retries.append(now)
            return True
        return False

    def _last_second(self, now: float) -> int:
        count = 0
        for t in reversed(self._retries):  # newest first: stop at the first one older than a second
            if t < now - 1.0:
                break
            count += 1
        return count
