"""Worker processes for the CPU-bound half of bulk loads: decoding records (`gateway.ingest.pipeline`).

One process talks to the database; the workers validate records and lay out their rows meanwhile, so the
database is kept busy by one writer while every other core decodes. `Decoders` hands blocks of lines (or
batches of items) to the workers, or decodes them in the calling process when it has no workers (small
loads: starting processes would cost more than it saves).

Workers are forked where the platform can (Linux), before the caller opens database connections or starts
threads (`Decoders` starts them all at construction), so that they share the parent's imported modules
instead of importing everything again; elsewhere they are spawned.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import platform
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from gateway.ingest.pipeline import Chunk, Context, Decoding, decode_block, decode_items, pack_context


def default_workers(size_bytes: int | None = None) -> int:
    """Workers for a load of `size_bytes` (None: unknown or a stream): one per core, none for small files."""
    if size_bytes is not None and size_bytes < SMALL_FILE:
        return 0
    return os.cpu_count() or 1


SMALL_FILE = 1 << 20  # bytes on disk; below this a load decodes in the calling process


# Freed blocks from this size up go back to the system at once (glibc's M_MMAP_THRESHOLD, in bytes).
BIG_BLOCK = 256 << 10
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@functools.cache  # once per process: every Decoders calls it
def steady_heap() -> bool:
    """Fix glibc's mmap threshold at BIG_BLOCK for this process and the workers it forks afterwards: True when
    set (Linux with glibc), False elsewhere (nothing done).

    A bulk load allocates and frees buffers of hundreds of KiB to tens of MiB over and over (blocks of lines,
    COPY text, a transaction's merged rows). By default glibc raises its threshold each time it frees such
    a buffer, up to 32 MiB; from then on they come from the heap, whose free space fragments and is kept,
    and the importer's resident memory grew with the file's length (+15 % from 100 k to 1 M records). A
    fixed threshold also turns that adjustment off."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, BIG_BLOCK))


def _ready() -> int:
    return os.getpid()


class Decoders:
    """Decoding of blocks and item batches, in `workers` processes (0: in the calling process).

    `use(context)` must be called before decoding: the units and KPI configuration the records are checked
    and laid out with. Use as a context manager; leaving it stops the workers.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor: Executor | None = None
        self.context: Decoding | None = None
        self.packed: bytes | None = None
        steady_heap()  # before forking: the workers inherit it
        if workers > 0:
            methods = multiprocessing.get_all_start_methods()
            mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.executor = ProcessPoolExecutor(workers, mp_context=mp)
            for future in [self.executor.submit(_ready) for _ in range(workers)]:
                future.result()  # every worker started now, before the caller has threads or connections

    def __enter__(self) -> Decoders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None

    def use(self, decoding: Decoding, context: Context) -> None:
        """Decode with `decoding` here and with `context` (the same, picklable) in the workers."""
        self.context = decoding
        self.packed = pack_context(context) if self.executor is not None else None

    def block(self, first_line: int, block: bytes) -> asyncio.Future[Chunk]:
        """Decode whole lines (the first numbered `first_line`); the chunk's source is set to `block`.
        The work starts now; await the result in the order wanted."""
        return self._submit(block, decode_block, first_line, block)

    def items(self, items: Sequence[Any]) -> asyncio.Future[Chunk]:
        """Decode a batch of records (dicts, JSON texts or raw JSON bytes); the chunk's source is `items`."""
        return self._submit(items, decode_items, items)

    def _submit(self, source: Any, fn: Any, *args: Any) -> asyncio.Future[Chunk]:
        assert self.context is not None, "call use() first"
        loop = asyncio.get_running_loop()
        if self.executor is None:  # decoded right here, now
            done: asyncio.Future[Chunk] = loop.create_future()
            try:
                chunk: Chunk = fn(self.context, *args)
            except Exception as exc:  # noqa: BLE001 - raised again where the chunk is awaited
                done.set_exception(exc)
            else:
                chunk.source = source
                done.set_result(chunk)
            return done
        decoded = asyncio.wrap_future(self.executor.submit(fn, self.packed, *args), loop=loop)

        # The source is set before anyone sees the chunk. (A done-callback would not do: a coroutine that
        # awaits the future after it completed resumes before the callbacks scheduled by its completion.)
        async def with_source() -> Chunk:
            chunk = await decoded
            chunk.source = source
            return chunk

        return asyncio.ensure_future(with_source())
