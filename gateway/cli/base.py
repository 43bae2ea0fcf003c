"""What every `gateway` subcommand shares: the registry, the one-line `CommandError`, opening the store.

The `gateway` command. Results go to standard output and nothing else does: progress, logs and
warnings go to standard error, so that `TOKEN=$(gateway token …)` and `gateway report … > r.json` work.
Exit status 0 on success; otherwise non-zero with a one-line reason on standard error.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from gateway.core.db import make_engine, make_sessionmaker
from gateway.core.migrate import migrate
from gateway.core.settings import Settings


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status `status`."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# Most commands are coroutines run by main(); a plain function runs as is (`serve --workers N` must start
# uvicorn's process supervisor on the main thread, outside any event loop).
Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int] | int]
COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn

    return register


def require_database(settings: Settings) -> None:
    """Commands that only read refuse an SQLite file that does not exist (opening it would leave an empty
    database behind and answer "unknown unit"): CommandError saying where to point them."""
    url = make_url(settings.database_url)
    path = url.database or ""
    if url.get_backend_name() == "sqlite" and path and path != ":memory:" and not Path(path).exists():
        raise CommandError(f"no database at {path}: set GATEWAY_DATABASE_URL (gateway demo prints the export "
                           "line for its database), or create one with gateway migrate")


async def open_store(settings: Settings) -> Any:
    """Engine and sessionmaker for the configured database, migrated when auto-migrate is on."""

    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        await migrate(engine)
    return engine, make_sessionmaker(engine)
