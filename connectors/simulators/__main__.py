"""Run simulators as real servers.

    python -m connectors.simulators enforcement --port 9102 --token s3cret --error-rate 0.2 --latency-ms 20
    python -m connectors.simulators all --base-port 9100   # complaints 9100, enforcement 9101, credit 9102,
                                                           # emergency 9103, sharing one generated world

Prints one line per system, "<system> <url>", on standard output once serving; Ctrl-C or SIGTERM stops.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from connectors.simulators import complaints, credit, emergency, enforcement
from connectors.simulators.base import Faults
from connectors.simulators.data import cases_from_records, generate_records, sample_handling_units
from connectors.simulators.server import ThreadedServer

SYSTEMS = ("complaints", "enforcement", "credit", "emergency")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m connectors.simulators", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("system", choices=(*SYSTEMS, "all"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="port of a single system (0: any free port)")
    p.add_argument("--base-port", type=int, default=9100, help="with 'all': first of four consecutive ports")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (401 otherwise)")
    p.add_argument("--seed", type=int, default=0, help="seed of generated data and of random faults")
    data = p.add_argument_group("data")
    data.add_argument("--records", type=int, default=1000, help="complaint records to generate (default 1000)")
    data.add_argument("--records-file", type=Path, help="load complaint records from a JSONL file instead")
    data.add_argument("--units-csv", type=Path, help="org-unit CSV (records.md): records are handled by its "
                      "level 4-5 units; default: a small built-in Sichuan tree")
    data.add_argument("--advance-s", type=float, help="emergency: move incidents one status on every N seconds")
    data.add_argument("--push-url", help="complaints: also push records put through /_sim/records to this ingest "
                      "URL (e.g. http://127.0.0.1:8000/api/v1/ingest/complaints), signed with --push-secret")
    data.add_argument("--push-secret", help="complaints: the HMAC key of pushes (GATEWAY_INGEST_SECRET)")
    f = p.add_argument_group("faults (also settable at run time: POST /_sim/faults)")
    f.add_argument("--latency-ms", type=float, default=0)
    f.add_argument("--jitter-ms", type=float, default=0, help="random extra latency, uniform 0..N ms")
    f.add_argument("--error-rate", type=float, default=0, help="share of requests answered --error-status")
    f.add_argument("--error-status", type=int, default=503)
    f.add_argument("--throttle-rate", type=float, default=0, help="share answered --throttle-status")
    f.add_argument("--throttle-status", type=int, default=429)
    f.add_argument("--retry-after", type=float, help="Retry-After seconds sent with 429/503")
    f.add_argument("--outage", help="every request fails: a status such as 503, or 'reset' or 'hang'")
    f.add_argument("--reset-rate", type=float, default=0, help="share of connections reset (TCP RST)")
    f.add_argument("--malformed-rate", type=float, default=0, help="share answered 200 with invalid JSON")
    f.add_argument("--truncate-rate", type=float, default=0, help="share whose body is cut off mid-way")
    f.add_argument("--hang-s", type=float, default=30.0)
    return p.parse_args(argv)


def faults_from(args: argparse.Namespace) -> Faults:
    return Faults(
        latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, error_rate=args.error_rate,
        error_status=args.error_status, throttle_rate=args.throttle_rate, throttle_status=args.throttle_status,
        retry_after=args.retry_after, outage=args.outage, reset_rate=args.reset_rate,
        malformed_rate=args.malformed_rate, truncate_rate=args.truncate_rate, hang_s=args.hang_s,
    )


def load_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.records_file:
        with args.records_file.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    units = sample_handling_units()
    if args.units_csv:
        with args.units_csv.open(encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        units = [r["code"] for r in rows if r["level"] in ("4", "5")] or [r["code"] for r in rows]
    return generate_records(args.records, units, args.seed)


def build(system: str, args: argparse.Namespace, records: list[dict[str, Any]]) -> Any:
    common: dict[str, Any] = {"token": args.token, "faults": faults_from(args), "seed": args.seed}
    if system == "complaints":
        return complaints.create_app(records, push_url=args.push_url, push_secret=args.push_secret, **common)
    if system == "enforcement":
        return enforcement.create_app(cases_from_records(records, args.seed), **common)
    if system == "credit":
        return credit.create_app(**common)
    return emergency.create_app(advance_s=args.advance_s, **common)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = SYSTEMS if args.system == "all" else (args.system,)
    needs_records = any(s in ("complaints", "enforcement") for s in systems)
    records = load_records(args) if needs_records else []
    servers = []
    for i, system in enumerate(systems):
        port = args.base_port + i if args.system == "all" else args.port
        server = ThreadedServer(build(system, args, records), args.host, port).start()
        servers.append(server)
        print(f"{system} {server.url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.stop(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
