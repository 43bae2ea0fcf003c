"""A client for a running simulator's control routes (`/_sim/...`): faults, counters, recent requests."""

from __future__ import annotations

from typing import Any

import httpx


class SimControl:
    def __init__(self, system: str, url: str) -> None:
        self.system, self.url = system, url
        self.http = httpx.Client(base_url=url, timeout=5)

    def faults(self, **faults: Any) -> None:
        self.http.post("/_sim/faults", json=faults).raise_for_status()

    def reset(self) -> None:
        self.http.post("/_sim/reset").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(self.http.get("/_sim/stats").json())

    def total_requests(self) -> int:
        return int(self.stats()["total_requests"])

    def requests(self) -> list[dict[str, Any]]:
        """The recent API requests, with their headers of interest."""
        return list(self.http.get("/_sim/requests").json())

    def get(self, path: str) -> Any:
        resp = self.http.get(path)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any) -> Any:
        resp = self.http.post(path, json=body)
        resp.raise_for_status()
        return resp.json()

    def close(self) -> None:
        self.http.close()
