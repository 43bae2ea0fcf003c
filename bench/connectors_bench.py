"""Connector benchmark: resilience figures against simulators running as separate server processes.

    .venv/bin/python -m bench.connectors_bench [--calls 2000] [--concurrency 50] [--records 20000]

1. Reads through a flaky system (20 % transient 503s, 20 ms latency): success rate (goal >= 99.5 %),
   p50/p99 latency, retries per call; with the default retry budget (0.2) and with 0.3. A 20 % error rate
   needs about 0.25 retries a call, more than the default budget lets through: the budget is meant to
   stop retry storms, and at 0.2 it shows what it costs.
2. Calls to a system that is down, once its circuit is open: p99 latency (goal <= 5 ms).
3. `gateway sync` throughput from the complaint-platform simulator into PostgreSQL (records/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from typing import Any

from prometheus_client import REGISTRY

from connectors import CircuitState, ComplaintsConnector, ConnectorConfig, CreditConnector, UpstreamFailure
from connectors.simulators import make_uscc
from connectors.simulators.server import run_in_process

PG_URL = os.environ.get("GATEWAY_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def simulator(system: str, *flags: str) -> Any:
    return run_in_process(system, *flags)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def run_calls(connector: CreditConnector, calls: int, concurrency: int) -> tuple[int, list[float]]:
    rng = random.Random(1)
    codes = [make_uscc(rng) for _ in range(200)]
    latencies: list[float] = []
    ok = 0
    queue = iter(range(calls))

    async def worker() -> None:
        nonlocal ok
        for i in queue:
            started = time.perf_counter()
            try:
                await connector.enterprises([codes[i % len(codes)]])
                ok += 1
            except UpstreamFailure:
                pass
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, latencies


async def flaky_reads(url: str, calls: int, concurrency: int, retry_budget: float) -> dict[str, Any]:
    connector = CreditConnector(ConnectorConfig(url=url, retry_budget=retry_budget))
    retries0 = counter("gateway_upstream_retries_total", system="credit")
    refusals0 = counter("gateway_upstream_retry_budget_refusals_total", system="credit")
    started = time.perf_counter()
    ok, lat = await run_calls(connector, calls, concurrency)
    elapsed = time.perf_counter() - started
    await connector.aclose()
    return {
        "retry_budget": retry_budget,
        "success_rate": ok / calls,
        "p50_ms": pct(lat, 0.5) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
        "retries_per_call": (counter("gateway_upstream_retries_total", system="credit") - retries0) / calls,
        "budget_refusals": counter("gateway_upstream_retry_budget_refusals_total", system="credit") - refusals0,
        "calls_per_s": calls / elapsed,
    }


async def open_circuit(url: str, calls: int) -> dict[str, Any]:
    connector = CreditConnector(ConnectorConfig(url=url))
    while connector.circuit_state is not CircuitState.OPEN:  # trip it: min calls 10, failure rate 0.5
        try:
            await connector.enterprises([make_uscc(random.Random(0))])
        except UpstreamFailure:
            pass
    lat = []
    for _ in range(calls):
        started = time.perf_counter()
        try:
            await connector.enterprises([make_uscc(random.Random(0))])
        except UpstreamFailure:
            pass
        lat.append(time.perf_counter() - started)
    await connector.aclose()
    return {"p50_ms": pct(lat, 0.5) * 1000, "p99_ms": pct(lat, 0.99) * 1000, "max_ms": max(lat) * 1000}


async def sync_throughput(url: str, records: int, database_url: str) -> dict[str, Any]:
    from sqlalchemy import text

    from connectors.simulators import sample_units_csv
    from gateway.core.db import make_engine, make_sessionmaker, transaction
    from gateway.core.migrate import migrate
    from gateway.ingest.sync import sync_until_caught_up
    from gateway.ingest.units_file import import_units

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(database_url)
    async with admin.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{database_url}{'&' if '?' in database_url else '?'}search_path={schema}")
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        async with transaction(sm) as session:
            await import_units(session, sample_units_csv())
        connector = ComplaintsConnector(ConnectorConfig(url=url, timeout_s=30, budget_s=60))
        report = await sync_until_caught_up(sm, connector, limit=1000)
        await connector.aclose()
        return {"records": report.stored, "rejected": len(report.rejected), "pages": report.pages,
                "seconds": report.seconds, "records_per_s": report.stored / report.seconds}
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


def show(title: str, figures: dict[str, Any]) -> None:
    print(title)
    for key, value in figures.items():
        print(f"  {key:18} {value:.4g}" if isinstance(value, float) else f"  {key:18} {value}")


async def main(args: argparse.Namespace) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; simulators in their own processes")
    flaky = ("--error-rate", "0.2", "--error-status", "503", "--latency-ms", "20", "--seed", "1")
    with simulator("credit", *flaky) as url:
        for budget in (0.2, 0.3):
            show(f"\n1. {args.calls} reads, concurrency {args.concurrency}, 20% 503s, 20 ms latency, "
                 f"retry budget {budget}", await flaky_reads(url, args.calls, args.concurrency, budget))
    with simulator("credit", "--outage", "503") as url:
        show(f"\n2. {args.calls} calls to a system that is down, circuit open", await open_circuit(url, args.calls))
    if not args.skip_sync:
        with simulator("complaints", "--records", str(args.records), "--seed", "5") as url:
            show(f"\n3. sync of {args.records} records into PostgreSQL, pages of 1000",
                 await sync_throughput(url, args.records, args.database_url))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--skip-sync", action="store_true")
    asyncio.run(main(parser.parse_args()))
