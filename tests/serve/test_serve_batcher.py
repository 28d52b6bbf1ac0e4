"""MicroBatcher: concurrent submits share calls, keep their order, fail alone, are bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sapbert_st.serve import MicroBatcher, QueueFullError


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_submits_share_one_call_per_key_in_order():
    calls = []

    def function(key, items):
        calls.append((key, list(items)))
        return [f"{key}:{item}" for item in items]

    async def scenario():
        batcher = MicroBatcher(function, max_batch=100, max_wait_s=0.05)
        results = await asyncio.gather(
            batcher.submit("a", [1, 2]), batcher.submit("b", [3]), batcher.submit("a", [4]),
            batcher.submit("a", [5, 6, 7]))
        stats = batcher.stats()
        await batcher.close()
        return results, stats

    results, stats = run(scenario())
    assert results == [["a:1", "a:2"], ["b:3"], ["a:4"], ["a:5", "a:6", "a:7"]]
    assert sorted(calls) == [("a", [1, 2, 4, 5, 6, 7]), ("b", [3])]
    assert stats["calls"] == 2 and stats["items"] == 7 and stats["requests"] == 4


def test_batches_stop_growing_at_max_batch():
    sizes = []

    def function(key, items):
        sizes.append(len(items))
        return items

    async def scenario():
        batcher = MicroBatcher(function, max_batch=4, max_wait_s=0.05)
        results = await asyncio.gather(*[batcher.submit(0, [i]) for i in range(10)])
        await batcher.close()
        return results

    assert run(scenario()) == [[i] for i in range(10)]
    assert sum(sizes) == 10 and max(sizes) <= 4 and len(sizes) >= 3


def test_a_failing_request_does_not_fail_the_others():
    def function(key, items):
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    async def scenario():
        batcher = MicroBatcher(function, max_wait_s=0.05)
        results = await asyncio.gather(batcher.submit(0, ["x"]), batcher.submit(0, ["bad"]),
                                       batcher.submit(0, ["y", "z"]), return_exceptions=True)
        await batcher.close()
        return results

    good, bad, more = run(scenario())
    assert good == ["X"] and more == ["Y", "Z"]
    assert isinstance(bad, ValueError) and str(bad) == "bad item"


def test_wrong_result_count_is_an_error():
    async def scenario():
        batcher = MicroBatcher(lambda key, items: items[:-1])
        with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
            await batcher.submit(0, [1, 2])
        await batcher.close()

    run(scenario())


def test_queue_is_bounded_and_close_fails_what_waits():
    release = threading.Event()

    def function(key, items):
        release.wait(5)
        return items

    async def scenario():
        batcher = MicroBatcher(function, max_queue=1, max_wait_s=0)
        running = asyncio.ensure_future(batcher.submit(0, [1]))
        await asyncio.sleep(0.1)  # taken by the worker, which now waits in function
        waiting = asyncio.ensure_future(batcher.submit(0, [2]))
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFullError, match="limit is 1"):
            await batcher.submit(0, [3])
        release.set()
        assert await running == [1] and await waiting == [2]
        stuck = threading.Event()
        batcher.function = lambda key, items: stuck.wait(5) and items
        again = asyncio.ensure_future(batcher.submit(0, [4]))
        queued = asyncio.ensure_future(batcher.submit(0, [5]))
        await asyncio.sleep(0.05)
        stuck.set()
        await batcher.close()
        await asyncio.sleep(0)
        return again, queued

    again, queued = run(scenario())
    assert isinstance(queued.exception(), QueueFullError)
    assert isinstance(again.exception(), QueueFullError)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="max_batch: expected a positive int, got 0"):
        MicroBatcher(len, max_batch=0)
    with pytest.raises(ValueError, match="max_wait_s: expected seconds between 0 and 1"):
        MicroBatcher(len, max_wait_s=2)
    with pytest.raises(ValueError, match="max_queue"):
        MicroBatcher(len, max_queue=-1)
