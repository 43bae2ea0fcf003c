"""A connection pool split into shards behind one transport.

httpcore's pool rescans every connection for every queued request whenever a request starts or ends, and
for each idle connection counts all connections again: the CPU cost per request grows with the square of
the pool size. At a few dozen concurrent calls that dominated the client's time (about 1.5 ms a call).
Several small pools, each request going to the least busy one, keep every scan short."""

from __future__ import annotations

import functools
import math
import ssl

import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of milliseconds of CPU: once per process, not once per shard and client.
    return httpx.create_ssl_context()


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, max_connections: int, shards: int = 10) -> None:
        per_shard = max(1, math.ceil(max_connections / shards))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, verify=_tls()) for _ in range(shards)]
        self._busy = [0] * shards

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        i = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[i] += 1
        try:
            # The body is read by the client after this returns; the shard's own pool keeps that
            # connection busy meanwhile, so the count here only steers new requests.
            return await self._shards[i].handle_async_request(request)
        finally:
            self._busy[i] -= 1

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
