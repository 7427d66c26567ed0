"""Keep a long run's resident memory flat, and read it.

A run allocates and frees many large arrays: frames, clips, reward-training batches. glibc's
allocator raises its mmap threshold every time such a block is freed, so later large blocks
come from the heap instead, and freed heap memory is seldom given back to the OS. RSS then
creeps up while live memory does not: in a 20k-step Pong run we measured free-but-held arena
memory grow from 38 MB to 600 MB. :func:`tame_allocator` fixes the threshold, so blocks from
it up are mapped on their own and returned when freed, and :func:`release_free_memory` trims
the heap (called after each reward update). Both are no-ops where glibc is absent.

The threshold depends on the observations (:func:`prefrl.run_setup.mmap_threshold_for`).
Image runs keep 256 KiB, the value measured on Pong. Vector runs use 4 MiB: with 256 KiB
every 256 x 256 float32 tensor of a SAC update (batch 256, 256 units) was mapped,
page-faulted and unmapped afresh, a third of the CPU went to the kernel, and HalfCheetah SAC
ran at 31 steps/s instead of 48 (``results/overhead/allocator``).

>>> rss_mb() is None or rss_mb() > 0
True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only (musl has no mallopt)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


MMAP_THRESHOLD_IMAGES = 256 << 10
MMAP_THRESHOLD_VECTORS = 4 << 20


def tame_allocator(mmap_threshold: int, trim_threshold: int = 64 << 20) -> bool:
    """Fix glibc's mmap threshold (and trim threshold); True if applied."""
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    return bool(ok and libc.mallopt(M_TRIM_THRESHOLD, int(trim_threshold)) == 1)


def release_free_memory() -> None:
    """Give free heap memory back to the OS (glibc ``malloc_trim``)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def rss_mb() -> float | None:
    """Resident memory of this process in MiB (None where /proc is absent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
