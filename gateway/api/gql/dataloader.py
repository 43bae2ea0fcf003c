"""A small asyncio DataLoader: keys asked for in the same turn of the event loop go out as one batch.

One instance lives for one request (created in the request context, never global), so its cache can
never serve one caller's data to another nor outlive a write. Batches hold at most `max_batch` keys and
run concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFn = Callable[[list[K]], Awaitable[Mapping[K, V]]]

# Turns of the loop to wait before dispatching: resolvers that await once before asking still join the batch.
_SETTLE_TURNS = 2


class DataLoader(Generic[K, V]):
    def __init__(self, batch_fn: BatchFn[K, V], *, max_batch: int = 100, default: V | None = None) -> None:
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._default = default
        self._cache: dict[K, asyncio.Future[V | None]] = {}
        self._queue: list[K] = []
        self._dispatch: asyncio.Task[None] | None = None
        self.batches = 0  # upstream calls made, for tests and benchmarks

    def load(self, key: K) -> asyncio.Future[V | None]:
        """A future of the value for `key` (the loader's default when the batch did not return it)."""
        fut = self._cache.get(key)
        if fut is not None:
            return fut
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._cache[key] = fut
        self._queue.append(key)
        if self._dispatch is None:
            self._dispatch = loop.create_task(self._run())
        return fut

    async def load_many(self, keys: Iterable[K]) -> list[V | None]:
        return list(await asyncio.gather(*(self.load(k) for k in keys)))

    def peek(self, key: K) -> tuple[bool, V | None]:
        """(True, value) when the value for `key` is known already (primed or loaded), without awaiting."""
        fut = self._cache.get(key)
        if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
            return True, fut.result()
        return False, None

    def prime(self, key: K, value: V) -> None:
        if key not in self._cache:
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(value)
            self._cache[key] = fut

    def clear(self, key: K) -> None:
        self._cache.pop(key, None)

    async def _run(self) -> None:
        for _ in range(_SETTLE_TURNS):
            await asyncio.sleep(0)
        keys, self._queue, self._dispatch = self._queue, [], None
        chunks = [keys[i : i + self._max_batch] for i in range(0, len(keys), self._max_batch)]
        await asyncio.gather(*(self._run_batch(chunk) for chunk in chunks))

    async def _run_batch(self, keys: list[K]) -> None:
        self.batches += 1
        try:
            found = await self._batch_fn(keys)
        except Exception as exc:  # every waiter of the batch sees the same failure
            for key in keys:
                fut = self._cache.get(key)
                if fut is not None and not fut.done():
                    fut.set_exception(exc)
            # Failures stay cached: one request sees one answer per key, and a down system is asked once.
            return
        for key in keys:
            fut = self._cache.get(key)
            if fut is not None and not fut.done():
                fut.set_result(found.get(key, self._default))
