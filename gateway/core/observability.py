"""Operations: structured JSON logs, and the Prometheus metrics of the HTTP surface (the middleware that
records them, with request ids, is `gateway.api.observe`: no web framework is loaded by the CLI's commands).

Metric names follow Prometheus conventions: a `gateway_` prefix, base units (`_seconds`), counters ending
in `_total` (prometheus-client adds it), and few labels — the route template, never the raw path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from connectors.context import request_id_var

HTTP_REQUESTS = Counter(
    "gateway_http_requests", "HTTP requests served, by route template and status code", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "gateway_http_request_duration_seconds", "Time to serve an HTTP request", ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRAPHQL_OPERATIONS = Counter(
    "gateway_graphql_operations", "GraphQL operations executed, by operation name and outcome", ["operation", "outcome"]
)
GRAPHQL_DURATION = Histogram(
    "gateway_graphql_operation_duration_seconds", "Time to execute a GraphQL operation", ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REPORT_DURATION = Histogram(
    "gateway_report_duration_seconds", "Time to compute a KPI report, by output format", ["format"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

log = logging.getLogger("gateway.http")

# Operation labels. A persisted operation (the safelist, graphql/operations/) is labelled by its name, always:
# those are few and fixed at start-up. Any other name is chosen by the caller, so those labels are bounded:
# at most _MAX_ADHOC_NAMES at once; a new name takes the place of the least used one (the oldest among
# equals), whose series are dropped. A client inventing names churns only the one-off names, never a
# persisted operation's label nor a name in steady use. Names that pose as a persisted operation's, or
# longer than _MAX_NAME, are "other"; unnamed operations are "anonymous". Under `serve --workers N` the
# series live in files that no removal reaches, so there a full set does not evict: new names are "other".
_MAX_ADHOC_NAMES = 100
_MAX_NAME = 64
OUTCOMES = ("ok", "partial", "error")
_adhoc_uses: dict[str, int] = {}
_reserved: set[str] = set()


def reserve_operation_labels(names: Iterable[str]) -> None:
    """Names of persisted operations: labels of their own, which no other document may take."""
    _reserved.update(names)


def operation_label(name: str | None, persisted: str | None = None) -> str:
    """The `operation` label of an executed operation: `persisted` (its persisted name) when it is one,
    else its name within the bound, "anonymous" or "other"."""
    if persisted is not None:
        return persisted
    if not name:
        return "anonymous"
    if name in _reserved or len(name) > _MAX_NAME:
        return "other"
    uses = _adhoc_uses.get(name)
    if uses is None:
        uses = 0
        if len(_adhoc_uses) >= _MAX_ADHOC_NAMES:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                return "other"
            victim = min(_adhoc_uses, key=_adhoc_uses.__getitem__)
            del _adhoc_uses[victim]
            _drop_series(victim)
    _adhoc_uses[name] = uses + 1
    return name


def _drop_series(label: str) -> None:
    for outcome in OUTCOMES:
        with contextlib.suppress(KeyError):
            GRAPHQL_OPERATIONS.remove(label, outcome)
    with contextlib.suppress(KeyError):
        GRAPHQL_DURATION.remove(label)


def observe_operation(
    name: str | None, has_data: bool, has_errors: bool, seconds: float, persisted: str | None = None
) -> None:
    """Count one executed operation by label (see `operation_label`) and outcome, and time it."""
    label = operation_label(name, persisted)
    outcome = "error" if not has_data else ("partial" if has_errors else "ok")
    GRAPHQL_OPERATIONS.labels(label, outcome).inc()
    GRAPHQL_DURATION.labels(label).observe(seconds)


# ------------------------------------------------------------------------------------------------ logs

REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # what a caller's X-Request-Id may be to be kept
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration plugin otherwise


def metrics_text() -> bytes:
    """The exposition of this process, or, under `gateway serve --workers N` (PROMETHEUS_MULTIPROC_DIR set),
    of every worker together: counters and histograms summed, gauges by their multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
