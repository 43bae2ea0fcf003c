"""The bulk-load processes give big freed buffers back to the system (gateway.ingest.workers.steady_heap)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a fresh process: a buffer of 8 MiB freed (by default glibc then raises its mmap threshold to 8 MiB),
# then one of 1 MiB made: the KiB of it in mmapped blocks (which go back to the system when freed).
_MMAPPED = """
import ctypes, ctypes.util, sys
from gateway.ingest.workers import Decoders, steady_heap
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "steady":
    assert steady_heap()
if sys.argv[1] == "decoders":
    Decoders(0).close()
big = bytes(8 << 20)
del big
before = libc.mallinfo2().hblkhd
buffer = bytes(1 << 20)
print((libc.mallinfo2().hblkhd - before) >> 10)
"""


def _mmapped_kib(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", _MMAPPED, mode], check=True, capture_output=True, text=True)
    return int(run.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_big_buffers_stay_out_of_the_heap_after_bigger_ones_were_freed() -> None:
    assert _mmapped_kib("default") == 0  # glibc's default: the reason for steady_heap
    assert _mmapped_kib("steady") >= 1024
    assert _mmapped_kib("decoders") >= 1024  # every bulk load (import, sync) makes Decoders
