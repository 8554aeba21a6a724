"""The glibc malloc settings used by serve and worker."""

from __future__ import annotations

import sys
import time

import psutil
import pytest

from nlp_service.memory import (
    HeapTrimmer,
    configure_process_memory,
    fix_mmap_threshold,
    limit_malloc_arenas,
    trim_heap,
)

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")


def test_zero_leaves_malloc_alone() -> None:
    assert limit_malloc_arenas(0) is False
    assert fix_mmap_threshold(0) is False
    assert configure_process_memory(arenas=0, mmap_threshold_bytes=0, trim_interval_s=0) is None


@glibc
def test_settings_are_applied_on_glibc() -> None:
    assert limit_malloc_arenas(2) is True
    assert fix_mmap_threshold(32 * 2**20) is True  # glibc's own maximum: changes little for the test run


@glibc
def test_trim_gives_fragmented_free_memory_back() -> None:
    rss = psutil.Process().memory_info
    blocks = [bytearray(1000) for _ in range(200_000)]  # ~200 MB of small heap blocks
    kept = blocks[::100]  # pins the heap: freeing the rest cannot shrink it from the top
    del blocks
    before = rss().rss
    assert trim_heap() is True
    after = rss().rss
    assert before - after > 50 * 2**20, (before, after)
    assert len(kept) == 2000


@glibc
def test_trimmer_runs_until_stopped() -> None:
    with pytest.raises(ValueError):
        HeapTrimmer(0)
    trimmer = HeapTrimmer(0.02).start()
    deadline = time.monotonic() + 10
    while trimmer.trims < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    trimmer.stop()
    assert trimmer.trims >= 3
    done = trimmer.trims
    time.sleep(0.1)
    assert trimmer.trims == done
