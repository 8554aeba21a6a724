"""The micro-batcher: order preserved for any arrival pattern, batching actually merges, overload is 429."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlp_service.errors import Overloaded
from nlp_service.inference.batcher import BatchStats, MicroBatcher


def _tag(values: list[str]) -> list[str]:
    return [f"out:{v}" for v in values]


@settings(max_examples=40, deadline=None)
@given(
    requests=st.lists(
        st.tuples(st.lists(st.text(min_size=0, max_size=5), min_size=1, max_size=12), st.floats(0, 0.003)),
        min_size=1,
        max_size=12,
    ),
    max_batch_size=st.integers(1, 9),
)
def test_every_caller_gets_its_results_in_input_order(requests, max_batch_size) -> None:
    async def scenario() -> None:
        batcher: MicroBatcher[str, str] = MicroBatcher(_tag, max_batch_size=max_batch_size, max_wait_ms=1)
        await batcher.start()

        async def call(values: list[str], delay: float) -> list[str]:
            await asyncio.sleep(delay)
            return await batcher.submit_many(values)

        try:
            results = await asyncio.gather(*(call(values, delay) for values, delay in requests))
        finally:
            await batcher.stop()
        for (values, _), result in zip(requests, results, strict=True):
            assert result == _tag(values)

    asyncio.run(scenario())


def test_concurrent_requests_are_merged_into_batches() -> None:
    sizes: list[int] = []
    threads: set[str] = set()

    def slow(values: list[int]) -> list[int]:
        threads.add(threading.current_thread().name)
        time.sleep(0.02)
        return [v * 2 for v in values]

    async def scenario() -> list[list[int]]:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            slow, max_batch_size=32, max_wait_ms=5, on_batch=lambda s: sizes.append(s.size)
        )
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit_many([i]) for i in range(40)))
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert results == [[i * 2] for i in range(40)]
    assert max(sizes) > 1 and len(sizes) < 40  # merged
    assert max(sizes) <= 32
    assert all(name.startswith("inference") for name in threads)  # never on the event loop thread


def test_full_queue_answers_overloaded_with_retry_after() -> None:
    release = threading.Event()

    def blocked(values: list[int]) -> list[int]:
        release.wait(5)
        return values

    async def scenario() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(blocked, max_batch_size=2, max_wait_ms=0, max_queue=4)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.submit_many([1, 2]))
            await asyncio.sleep(0.05)  # first batch is now running and blocked
            second = asyncio.create_task(batcher.submit_many([3, 4, 5]))
            await asyncio.sleep(0.01)
            with pytest.raises(Overloaded) as info:
                await batcher.submit_many([6, 7])
            assert int(info.value.headers["Retry-After"]) >= 1
            release.set()
            assert await first == [1, 2]
            assert await second == [3, 4, 5]
        finally:
            release.set()
            await batcher.stop()

    asyncio.run(scenario())


def test_a_failing_batch_fails_its_callers_and_the_batcher_keeps_serving() -> None:
    calls = {"n": 0}

    def flaky(values: list[str]) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("boom")
        return values

    async def scenario() -> None:
        stats: list[BatchStats] = []
        batcher: MicroBatcher[str, str] = MicroBatcher(flaky, max_wait_ms=0, on_batch=stats.append)
        await batcher.start()
        try:
            with pytest.raises(ValueError):
                await batcher.submit_many(["a"])
            assert await batcher.submit_many(["b"]) == ["b"]
        finally:
            await batcher.stop()

    asyncio.run(scenario())


def test_a_client_gets_at_most_its_share_of_the_queue_and_others_still_get_in() -> None:
    release = threading.Event()

    def blocked(values: list[int]) -> list[int]:
        release.wait(5)
        return values

    async def scenario() -> None:
        batcher: MicroBatcher[int, int] = MicroBatcher(
            blocked, max_batch_size=2, max_wait_ms=0, max_queue=10, max_queue_per_client=4
        )
        await batcher.start()
        try:
            running = asyncio.create_task(batcher.submit_many([0, 0], client="a"))
            await asyncio.sleep(0.05)  # that batch is running (and blocked): nothing of "a" is queued
            # "a" has nothing queued: admitted although bigger than its share
            big = asyncio.create_task(batcher.submit_many(list(range(6)), client="a"))
            await asyncio.sleep(0.01)
            assert batcher.pending_for("a") == 6
            with pytest.raises(Overloaded, match="share"):
                await batcher.submit_many([9], client="a")
            small = asyncio.create_task(batcher.submit_many([7, 8], client="b"))
            await asyncio.sleep(0.01)
            assert batcher.pending == 8 and batcher.pending_for("b") == 2
            with pytest.raises(Overloaded, match="queue is full"):
                await batcher.submit_many([1, 2, 3], client="c")  # the queue itself is bounded too
            release.set()
            assert await small == [7, 8]
            assert await big == list(range(6))
            assert await running == [0, 0]
            assert batcher.pending == 0 and batcher.pending_for("a") == 0
            assert await batcher.submit_many([5] * 4, client="a") == [5] * 4
        finally:
            release.set()
            await batcher.stop()

    asyncio.run(scenario())
