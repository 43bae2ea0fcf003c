"""`gateway serve --workers 2`: /metrics counts the requests every worker served, whichever worker answers."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthz_count(text: str) -> float:
    return sum(float(m.group(1)) for m in re.finditer(
        r'^gateway_http_requests_total\{[^}]*route="/healthz"[^}]*\} (\S+)$', text, re.M))


def test_metrics_from_every_worker(tmp_path: Path) -> None:
    """On SQLite only: what is shared here is the metrics, not the database."""
    port = _port()
    entry = "import sys; from gateway.cli.main import main; sys.exit(main())"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "PROMETHEUS_"))}
    env |= {"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
            "GATEWAY_JWT_SECRET": "workers-test-secret-at-least-32-bytes-long", "GATEWAY_DISPATCHER": "off"}
    server = subprocess.Popen([sys.executable, "-c", entry, "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection each time: any worker may answer
    try:
        with httpx.Client(base_url=base, limits=fresh, timeout=5) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "gateway serve did not start"
                time.sleep(0.2)
            time.sleep(1.5)  # the second worker is up too
            start = _healthz_count(client.get("/metrics").text)
            for _ in range(40):
                assert client.get("/healthz").status_code == 200
            seen = {_healthz_count(client.get("/metrics").text) for _ in range(8)}
        assert seen == {start + 40}, f"scrapes disagree or miss requests: {seen}, expected {start + 40}"
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
