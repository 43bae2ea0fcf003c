"""The README's example queries are valid against the published schema, and it starts with the two commands."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import build_schema, parse, validate

ROOT = Path(__file__).resolve().parent.parent


def test_readme_queries_are_valid() -> None:
    schema = build_schema((ROOT / "graphql" / "schema.graphql").read_text(encoding="utf-8"))
    blocks = re.findall(r"```graphql\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        assert [e.message for e in validate(schema, parse(block))] == [], block


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:8])
    assert "make demo" in head and "make test" in head
