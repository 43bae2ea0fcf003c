"""Secrets that are empty (interfaces.md 1.1): an empty or blank variable counts as unset, so an empty
secret never turns a feature on; a JWT secret under 32 bytes stops `serve` with a one-line reason;
`gateway token` refuses a unit that does not exist. Through the CLI as a subprocess."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from gateway.core.auth import decode_token
from tests.conftest import Database
from tests.factories import load_units

GOOD_JWT = "j" * 32


def run(db: Database, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          env=_env(db, **env), timeout=120, cwd=cwd)


def _env(db: Database, **env: str) -> dict[str, str]:
    base = {k: v for k, v in db.env().items() if not k.startswith("GATEWAY_") or k == "GATEWAY_DATABASE_URL"}
    return {**base, "GATEWAY_DISPATCHER": "off", **env}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(db: Database, cwd: Path | None = None, **env: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)], env=_env(db, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serve stopped: {proc.communicate()[1]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_an_empty_ingest_secret_leaves_push_off(db: Database) -> None:
    """docker-compose passes GATEWAY_INGEST_SECRET= when nothing is set: push must stay off. The server
    starts with a 32-byte JWT secret of 11 Chinese characters (bytes count, not characters)."""
    with serving(db, GATEWAY_JWT_SECRET="长" * 11, GATEWAY_INGEST_SECRET="") as url:
        body = b'{"items": []}'
        t = str(int(time.time()))
        mac = hmac.new(b"", t.encode() + b"." + body, hashlib.sha256).hexdigest()  # the empty key, as anyone
        resp = httpx.post(f"{url}/api/v1/ingest/complaints", content=body,
                          headers={"X-Signature": f"t={t},v1={mac}", "Content-Type": "application/json"})
        assert resp.status_code == 404 and "push ingest is off" in resp.json()["error"]["message"]


def test_blank_values_in_a_dotenv_file_are_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_INGEST_SECRET=\nGATEWAY_MAX_DEPTH=  \nGATEWAY_JWT_SECRET=\n",
                                   encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    code = ("from gateway.core.settings import Settings; s = Settings(); "
            "print(s.ingest_secret, s.max_depth, s.jwt_secret)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=60)
    assert done.stdout.split() == ["None", "12", "None"], done.stderr


def test_serve_refuses_a_missing_or_short_jwt_secret(tmp_path: Path) -> None:
    cases = [
        (None, "GATEWAY_JWT_SECRET is not set"),
        ("", "GATEWAY_JWT_SECRET is not set"),
        ("  ", "GATEWAY_JWT_SECRET is not set"),
        ("j" * 31, "GATEWAY_JWT_SECRET is 31 bytes; at least 32"),
        ("长" * 10, "GATEWAY_JWT_SECRET is 30 bytes; at least 32"),  # bytes, not characters
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    base["GATEWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    for secret, says in cases:
        env = base if secret is None else {**base, "GATEWAY_JWT_SECRET": secret}
        done = subprocess.run([sys.executable, "-m", "gateway", "serve", "--port", str(free_port())],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode != 0 and done.stdout == ""
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gateway serve: ") and says in lines[0], done.stderr


async def test_token_refuses_a_unit_that_does_not_exist(db: Database) -> None:
    await load_units(db.sessionmaker)
    done = run(db, "token", "--sub", "a", "--unit", "999999", "--roles", "reader", GATEWAY_JWT_SECRET=GOOD_JWT)
    assert done.returncode == 1 and done.stdout == ""
    assert "unit '999999' does not exist" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = run(db, "token", "--sub", "a", "--unit", "510800", "--roles", "reader", GATEWAY_JWT_SECRET=GOOD_JWT)
    assert done.returncode == 0, done.stderr
    assert decode_token(GOOD_JWT, done.stdout.strip()).unit == "510800"


async def test_token_refuses_other_bad_requests(db: Database) -> None:
    await load_units(db.sessionmaker)
    for args, secret in [(["--unit", "510800\x01"], GOOD_JWT), (["--unit", ""], GOOD_JWT),
                         (["--unit", "510800", "--ttl", "0"], GOOD_JWT), (["--unit", "510800"], " ")]:
        done = run(db, "token", "--sub", "a", "--roles", "reader", *args, GATEWAY_JWT_SECRET=secret)
        assert done.returncode == 1 and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, args


def test_an_empty_upstream_url_is_not_configured(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_COMPLAINTS_URL="", GATEWAY_COMPLAINTS_TOKEN="",
               GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    done = subprocess.run([sys.executable, "-m", "gateway", "sync", "--once"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 1 and "GATEWAY_COMPLAINTS_URL is not set" in done.stderr


def test_every_secret_and_url_counts_blank_as_unset() -> None:
    """Beyond the examples: each optional setting, set to blank, reads as unset (in a clean process)."""
    from gateway.core.settings import Settings

    optional = [name for name, f in Settings.model_fields.items() if f.default is None]
    assert {"jwt_secret", "ingest_secret", "credit_token", "complaints_url"} <= set(optional)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({f"GATEWAY_{name.upper()}": " " for name in optional})
    code = ("from gateway.core.settings import Settings; s = Settings(); "
            f"print(sorted(n for n in {optional!r} if getattr(s, n) is not None))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
