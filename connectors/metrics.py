"""Prometheus metrics of upstream calls (default registry). Labels stay few: system, operation, outcome."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "gateway_upstream_requests",  # exposed as gateway_upstream_requests_total
    "Calls to external systems, after retries, by outcome",
    ["system", "operation", "outcome"],
)
DURATION = Histogram(
    "gateway_upstream_request_duration_seconds",
    "Duration of calls to external systems, retries and waits included",
    ["system", "operation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RETRIES = Counter("gateway_upstream_retries", "Retried attempts to external systems", ["system"])
CIRCUIT_STATE = Gauge(
    "gateway_upstream_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open", ["system"],
    multiprocess_mode="livemax",  # each worker has its own breaker: with several, the worst one shows
)
RETRY_BUDGET_REFUSALS = Counter(
    "gateway_upstream_retry_budget_refusals", "Retries refused because the system's retry budget was spent",
    ["system"],
)

# Outcomes of a call, the values of the `outcome` label.
OK = "ok"
ERROR = "error"  # UpstreamError
UNAVAILABLE = "unavailable"  # retries exhausted, timeouts, budget spent
CIRCUIT_OPEN = "circuit_open"  # refused without a request
NOT_CONFIGURED = "not_configured"
