"""Per-system connector configuration: a plain dataclass, so `connectors` needs nothing from the gateway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

System = Literal["complaints", "enforcement", "credit", "emergency"]
SYSTEMS: tuple[System, ...] = ("complaints", "enforcement", "credit", "emergency")


@dataclass(frozen=True, slots=True)
class ConnectorConfig:
    """One external system's address and resilience knobs; defaults are those of interfaces.md."""

    url: str | None = None  # None: the system is not configured, every call raises UpstreamNotConfigured
    token: str | None = None
    timeout_s: float = 2.0  # one attempt
    attempts: int = 4  # the first included
    budget_s: float = 6.0  # all attempts of one call, waits included
    retry_budget: float = 0.2  # retries may add at most this share of the calls of the last 10 s
    circuit_window_s: float = 30.0
    circuit_min_calls: int = 10
    circuit_failure_rate: float = 0.5
    circuit_open_s: float = 15.0
    # Not in interfaces.md: tuning an operator rarely needs, kept here so tests can shrink them.
    backoff_base_s: float = 0.1  # full-jitter window of the first retry; doubles each retry
    backoff_max_s: float = 2.0
    min_retries_per_s: float = 3.0  # always allowed, whatever the retry budget says
    half_open_trials: int = 1  # concurrent trial calls let through a half-open circuit
    max_connections: int = 100
    max_body_bytes: int = 64 * 1024 * 1024  # a 2xx body larger than this is a broken answer, not read further

    @property
    def configured(self) -> bool:
        return bool(self.url)
