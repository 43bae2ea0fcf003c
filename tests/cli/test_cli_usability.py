"""The command line as a person meets it: --version, help on every option, one-line answers that say what to
do (a wrong database URL, a bad setting, a unit file given to `import`, no database), warnings in one line."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli.main import build_parser, main
from gateway.core.settings import get_settings
from tests.factories import UNITS_CSV

SECRET = "cli-usability-secret-at-least-32-bytes"


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """`gateway ARGS` run in this process (main() as the console script calls it), with only the given
    GATEWAY_* variables set: as fast as a function call, as real as the command."""

    def run(*args: str, cwd: Path | None = None, **env: str) -> Done:
        for name in [k for k in os.environ if k.startswith("GATEWAY_")]:
            monkeypatch.delenv(name)
        for name, value in ({"GATEWAY_JWT_SECRET": SECRET} | env).items():
            monkeypatch.setenv(name, value)
        if cwd is not None:
            monkeypatch.chdir(cwd)
        get_settings.cache_clear()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse: --version, --help
            code = int(exc.code or 0)
        finally:
            get_settings.cache_clear()
        out = capsys.readouterr()
        return Done(code, out.out, out.err)

    return run


def test_version(gateway: Callable[..., Done]) -> None:
    done = gateway("--version")
    assert done.returncode == 0 and done.stdout.startswith("gateway ") and done.stdout.split()[1][0].isdigit()
    assert done.stdout.split()[1] == importlib.metadata.version("gateway12315")


def test_every_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, command in sub.choices.items() for action in command._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert not missing, f"options without help: {missing}"
    assert all(a.help for a in parser._actions if not isinstance(a, argparse._SubParsersAction))
    assert all(c.help for c in sub._choices_actions)  # every command is described in `gateway --help`


@pytest.mark.parametrize("url", ["postgres://u:p@db:5432/g", "postgresql://u:p@db/g", "sqlite:///./g.db",
                                 "mysql+aiomysql://u@db/g"])
def test_wrong_database_url_says_what_to_write(gateway: Callable[..., Done], url: str) -> None:
    done = gateway("migrate", GATEWAY_DATABASE_URL=url)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "GATEWAY_DATABASE_URL" in lines[0] and ("+asyncpg://" in lines[0] or "+aiosqlite://" in lines[0])
    assert ":p@" not in lines[0]  # the password is not echoed


def test_bad_setting_names_its_variable(gateway: Callable[..., Done]) -> None:
    done = gateway("migrate", GATEWAY_CONNECTOR_ATTEMPTS="many")
    assert done.returncode == 2 and "GATEWAY_CONNECTOR_ATTEMPTS" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_import_given_a_unit_file(gateway: Callable[..., Done], tmp_path: Path) -> None:
    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV, encoding="utf-8")
    renamed = tmp_path / "units.txt"
    renamed.write_text(UNITS_CSV, encoding="utf-8")
    for path in (units, renamed):
        done = gateway("import", str(path), GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        assert done.returncode == 2 and "import-units" in done.stderr and len(done.stderr.splitlines()) == 1


def test_report_without_a_database_says_where_to_point_it(gateway: Callable[..., Done], tmp_path: Path) -> None:
    done = gateway("report", "--unit", "510000", "--from", "2026-01-01", "--to", "2026-01-31", cwd=tmp_path)
    assert done.returncode == 1 and "GATEWAY_DATABASE_URL" in done.stderr and done.stdout == ""
    assert not (tmp_path / "gateway.db").exists()  # nothing left behind


def test_library_warnings_are_one_plain_line() -> None:
    """In a process of its own: the warning filters and showwarning hook are process-wide."""
    script = ("import sys, warnings; from gateway.cli import main as m; sys.argv=['gateway', 'schema'];"
              "real = m.get_settings\n"
              "def noisy():\n    warnings.warn('The HMAC key is 15 bytes long,\\n which is short', UserWarning)\n"
              "    return real()\n"
              "m.get_settings = noisy; sys.exit(m.main())")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr.strip() == "gateway: warning: The HMAC key is 15 bytes long, which is short"


@pytest.fixture(autouse=True)
def _keep_process_state() -> Iterator[None]:
    """main() sets the root logger's handler and level and the warnings hook: put them back for later tests."""
    root = logging.getLogger()
    saved = warnings.showwarning, root.handlers[:], root.level
    yield
    warnings.showwarning, root.handlers[:], level = saved
    root.setLevel(level)
