"""docker-compose.yml, the Dockerfile and their files are safe to run: required secrets named, simulators only
with the `try` profile, only the proxy published (on loopback unless told), healthchecks, pinned images and
packages, a proxy that re-resolves the replicas; and `gateway health`, the containers' check."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Database

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(COMPOSE is None, reason="docker-compose (Debian package) not installed")
REQUIRED = {"GATEWAY_JWT_SECRET": "x" * 40, "POSTGRES_PASSWORD": "pw", "GATEWAY_UNITS_CSV": "./deploy/units-try.csv"}
ONE_SHOT = {"migrate", "units"}


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMPOSE or "", *args], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


def config(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = compose(*args, "config", env=env)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


@needs_compose
@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_required_secrets_are_named(missing: str) -> None:
    done = compose("config", "-q", env={k: v for k, v in REQUIRED.items() if k != missing})
    assert done.returncode != 0 and missing in done.stderr


@needs_compose
def test_production_shape() -> None:
    services = config(env=REQUIRED)["services"]
    assert services["simulators"]["profiles"] == ["try"]  # started only with --profile try
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert list(published) == ["proxy"]
    port = published["proxy"][0]
    assert (port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]) == "127.0.0.1", port
    for name, service in services.items():
        if name not in ONE_SHOT:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        image = service["image"]
        if not image.startswith("gateway12315:"):  # built here; every other image pinned to an exact version
            assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} floats"  # postgres: 16.4 is exact
    env = services["gateway"]["environment"]
    for system in ("COMPLAINTS", "ENFORCEMENT", "CREDIT", "EMERGENCY"):
        assert not env.get(f"GATEWAY_{system}_URL") and not env.get(f"GATEWAY_{system}_TOKEN")
    assert not env.get("GATEWAY_INGEST_SECRET")
    assert services["sync"]["depends_on"]["units"]["condition"] == "service_completed_successfully"
    assert services["units"]["command"][:2] == ["gateway", "import-units"]


@needs_compose
def test_published_address_is_set_by_the_operator() -> None:
    services = config(env=REQUIRED | {"GATEWAY_BIND": "0.0.0.0", "GATEWAY_PORT": "80"})["services"]
    port = services["proxy"]["ports"][0]
    if isinstance(port, dict):
        port = f"{port.get('host_ip')}:{port.get('published')}:{port.get('target')}"
    assert port.removesuffix("/tcp") == "0.0.0.0:80:8000"


@needs_compose
def test_try_profile_wires_the_simulators() -> None:
    services = config("--env-file", "deploy/try.env", "--profile", "try")["services"]
    assert "simulators" in services and services["simulators"]["healthcheck"]["test"]
    env = services["gateway"]["environment"]
    assert env["GATEWAY_COMPLAINTS_URL"] == "http://simulators:9001"
    assert env["GATEWAY_CREDIT_URL"] == "http://simulators:9003"


def test_proxy_re_resolves_the_replicas() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", conf, re.M)
    # a variable in proxy_pass, no static upstream block: the name is resolved again while nginx runs
    assert re.search(r"proxy_pass \$\w+;", conf) and not re.search(r"^\s*upstream ", conf, re.M)


def test_image_is_pinned_and_checks_its_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:\d+\.\d+\.\d+-slim", dockerfile, re.M)
    assert re.search(r"^HEALTHCHECK .*gateway.*health", dockerfile, re.M)
    assert "-c deploy/constraints.txt" in dockerfile
    lines = (ROOT / "deploy" / "constraints.txt").read_text().splitlines()
    pins = dict(line.lower().replace("_", "-").replace(".", "-").split("==") for line in lines
                if line and not line.startswith("#"))
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        name = re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0].lower().replace("_", "-").replace(".", "-")
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"


async def test_gateway_health(db: Database) -> None:
    entry = "import sys; from gateway.cli.main import main; sys.exit(main())"
    ok = subprocess.run([sys.executable, "-c", entry, "health"], capture_output=True, text=True, env=db.env(),
                        timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("ok"), ok.stderr
    down = subprocess.run([sys.executable, "-c", entry, "health"], capture_output=True, text=True, timeout=60,
                          env=db.env(GATEWAY_DATABASE_URL="postgresql+asyncpg://nobody@127.0.0.1:1/none"))
    assert down.returncode == 1 and "database unavailable" in down.stderr and len(down.stderr.splitlines()) == 1
