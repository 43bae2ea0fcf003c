"""Persisted operations: every `graphql/operations/*.graphql` file, callable by the sha256 of its text.

A client sends `extensions.persistedQuery.sha256Hash` (Apollo style) or `documentId` ("sha256:<hex>" or the
bare hex). In safelist mode only these operations run, whether sent by hash or in full.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parents[3] / "graphql" / "operations"


def document_hash(text: str) -> str:
    # surrogatepass: any text a caller sends hashes (and matches nothing) instead of failing to encode.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class PersistedOperation:
    name: str  # the file name without .graphql
    sha256: str
    text: str


class PersistedOperations:
    def __init__(self, operations: list[PersistedOperation]) -> None:
        self.by_hash = {op.sha256: op for op in operations}

    @classmethod
    def load(cls, directory: Path | None) -> PersistedOperations:
        directory = directory or DEFAULT_DIR
        if not directory.is_dir():
            return cls([])
        ops = []
        for path in sorted(directory.glob("*.graphql")):
            text = path.read_text(encoding="utf-8")
            ops.append(PersistedOperation(path.stem, document_hash(text), text))
        return cls(ops)

    def get(self, document_id: str) -> PersistedOperation | None:
        key = document_id.removeprefix("sha256:").lower()
        return self.by_hash.get(key)

    def allows(self, text: str) -> bool:
        return document_hash(text) in self.by_hash

    def __len__(self) -> int:
        return len(self.by_hash)
