"""What `gateway demo` runs: the whole system on one machine with no set-up.

An SQLite file, a real province's five-level unit tree (GB/T 2260 via python-stdnum, stations generated),
simulators of the four external systems on loopback, N synthetic records fed in through the real sync
connector, the flag dispatcher, and the server. Data and secrets live in ./demo-data, so a second start
reuses them (the feed cursor is stored, the simulated platform serves the same records again).
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import shlex
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import SecretStr

from connectors.simulators import complaints as sim_complaints
from connectors.simulators import credit as sim_credit
from connectors.simulators import emergency as sim_emergency
from connectors.simulators import enforcement as sim_enforcement
from connectors.simulators.data import cases_from_records, generate_records
from connectors.simulators.server import ThreadedServer
from gateway.core.auth import mint_token
from gateway.core.db import make_engine, make_sessionmaker, transaction
from gateway.core.migrate import migrate
from gateway.core.settings import Settings
from gateway.core.upstreams import build_upstreams
from gateway.ingest.units_file import import_units
from gateway.units.sample import province_tree, units_csv

DATA_DIR = Path("demo-data")
PROVINCE = "51"  # 四川省
SEED = 12315


def _secret(name: str) -> str:
    """A secret kept in the demo folder, made on first start."""
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def run_demo(args: argparse.Namespace, base: Settings) -> int:
    DATA_DIR.mkdir(exist_ok=True)
    jwt_secret = base.jwt_secret.get_secret_value() if base.jwt_secret else _secret("jwt-secret")
    sim_token = _secret("upstream-token")
    rows = province_tree(PROVINCE, stations_per_county=2)
    handling = [code for code, _, level, _ in rows if level >= 4]

    # The platform's records span the last half year, so some are still being handled today.
    start = date.today() - timedelta(days=200)
    _say(f"demo: generating {args.records} synthetic records …")
    records = generate_records(args.records, handling, seed=SEED, start=start, days=180)
    servers = {
        "complaints": ThreadedServer(sim_complaints.create_app(records, token=sim_token, seed=SEED)),
        "enforcement": ThreadedServer(sim_enforcement.create_app(cases_from_records(records, SEED),
                                                                 token=sim_token, seed=SEED)),
        "credit": ThreadedServer(sim_credit.create_app(token=sim_token, seed=SEED)),
        "emergency": ThreadedServer(sim_emergency.create_app(token=sim_token, seed=SEED, advance_s=60)),
    }
    for server in servers.values():
        server.start()
    try:
        settings = base.model_copy(update={
            "database_url": f"sqlite+aiosqlite:///{(DATA_DIR / 'gateway.db').resolve()}",
            # model_copy does not validate: secrets must be wrapped as the settings model would.
            "jwt_secret": SecretStr(jwt_secret),
            "ingest_secret": base.ingest_secret or SecretStr(_secret("ingest-secret")),
            **{f"{name}_url": server.url for name, server in servers.items()},
            **{f"{name}_token": SecretStr(sim_token) for name in servers},
        })
        await _load(settings, rows)
        from gateway.cli.demo_supervision import seed_supervision

        supervision = await seed_supervision(settings)
        _print_welcome(settings, args, jwt_secret, servers, supervision)
        from gateway.api.app import create_app

        config = uvicorn.Config(create_app(settings), host=args.host, port=args.port, log_level="warning",
                                access_log=False)
        await uvicorn.Server(config).serve()
    finally:
        for server in servers.values():
            with contextlib.suppress(Exception):
                server.stop(timeout=3)
    _say("demo: stopped")
    return 0


async def _load(settings: Settings, rows: list[tuple[str, str, int, str]]) -> None:
    from tqdm import tqdm

    from gateway.ingest.sync import sync_until_caught_up

    engine = make_engine(settings.database_url)
    await migrate(engine)
    sm = make_sessionmaker(engine)
    async with transaction(sm) as session:
        added, _ = await import_units(session, units_csv(rows))
    _say(f"demo: unit tree of province {PROVINCE}0000: {len(rows)} units ({added} new)")
    upstreams = build_upstreams(settings)
    try:
        with tqdm(desc="demo: sync from the complaint platform", unit=" records", file=sys.stderr) as bar:
            def progress(report: object) -> None:
                bar.n = getattr(report, "received", 0)
                bar.refresh()

            report = await sync_until_caught_up(sm, upstreams.complaints, after_page=progress)
        _say(f"demo: sync: {report.summary()}")
    finally:
        await upstreams.aclose()
        await engine.dispose()


def _print_welcome(settings: Settings, args: argparse.Namespace, jwt_secret: str,
                   servers: dict[str, ThreadedServer], supervision: dict[str, Any]) -> None:
    from gateway.cli.demo_supervision import banner

    base = f"http://{args.host}:{args.port}"
    ttl = 30 * 86400
    city = "510800"  # 广元市
    tokens = {
        "external system (reader, 四川省)": mint_token(jwt_secret, "sichuan-12345-hotline", "510000", ["reader"], ttl),
        "evaluator at the province (510000)": mint_token(jwt_secret, "eval-sichuan", "510000", ["evaluator"], ttl),
        f"evaluator at a city ({city})": mint_token(jwt_secret, "eval-guangyuan", city, ["evaluator"], ttl),
        "operator (510000)": mint_token(jwt_secret, "operator-sichuan", "510000", ["reader", "operator"], ttl),
        "credit system (100000)": mint_token(jwt_secret, "credit-supervision", "100000", ["credit"], ttl),
        "supervisor at the province (510000)": mint_token(jwt_secret, "supervisor-sichuan", "510000",
                                                          ["supervisor", "reader"], ttl),
        f"operator at a city ({city})": mint_token(jwt_secret, "operator-guangyuan", city, ["reader", "operator"],
                                                   ttl),
    }
    year = date.today().year
    ingest = settings.ingest_secret.get_secret_value() if settings.ingest_secret else ""
    lines = [
        "",
        "12315 gateway demo is running. Ctrl-C stops it; starting it again reuses ./demo-data.",
        f"  GraphQL (GraphiQL in a browser): {base}/graphql",
        f"  KPI report: {base}/api/v1/kpi/report?unit=510000&level=3&from={year}-01-01&to={date.today()}&format=json",
        f"  Evaluators' page: {base}/reports (sign in at {base}/login with an evaluator token below)",
        f"  Supervisors' page: {base}/supervision (with the supervisor token below)",
        f"  Live feed: ws://{base.removeprefix('http://')}/graphql (graphql-transport-ws; subscription {{ alerts }})",
        f"  Metrics: {base}/metrics   Health: {base}/healthz {base}/readyz",
        "  Simulators: " + ", ".join(f"{name} {server.url}" for name, server in servers.items()),
        *banner(supervision),
        f"  JWT secret (GATEWAY_JWT_SECRET): {jwt_secret}",
        "Tokens (Authorization: Bearer …), valid 30 days:",
        *(f"  {who}:\n    {token}" for who, token in tokens.items()),
        "In another terminal in this folder, these lines point `gateway` at this demo (as the README's examples do):",
        f"  export GATEWAY_DATABASE_URL={shlex.quote(settings.database_url)}",
        f"  export GATEWAY_JWT_SECRET={shlex.quote(jwt_secret)}",
        f"  export GATEWAY_INGEST_SECRET={shlex.quote(ingest)}",
        f"  export GATEWAY_URL={base}",
        "Try:",
        f"  curl -s {base}/graphql -H 'Content-Type: application/json' \\",
        f"    -H 'Authorization: Bearer {tokens['external system (reader, 四川省)']}' \\",
        "    -d '{\"query\": \"{ complaints(first: 3) { nodes { id kind receivedAt "
        "enterprise { creditProfile { name riskLevel } } } } }\"}'",
        f"  curl -s {base}/graphql -H 'Content-Type: application/json' \\",
        f"    -H 'Authorization: Bearer {tokens['supervisor at the province (510000)']}' \\",
        "    -d '{\"query\": \"{ deadlineLights(unit: \\\"510000\\\") { unit { name } red yellow green } }\"}'",
        "",
    ]
    print("\n".join(lines), flush=True)
