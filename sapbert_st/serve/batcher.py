"""MicroBatcher: concurrent requests' items gathered into one call of the encoder.

One encoder call on 64 mentions costs little more than on one (the matrix products are
wider, the per-call overhead is paid once), so a service that encodes each request on its
own wastes most of the hardware under concurrent load. The batcher queues each request's
items; one worker takes every request waiting (up to ``max_batch`` items), waits at most
``max_wait_s`` for more when the batch is not full, and runs the items of requests that
share a key (the same ``k``, threshold and type filter) as one call of ``function`` in a
worker thread, so the event loop keeps answering other clients meanwhile. Under load the
batches grow by themselves: requests queue while the previous batch runs.

The queue is bounded (``max_queue`` requests): past it :meth:`MicroBatcher.submit` raises
:class:`QueueFullError` (the service answers 503) instead of letting latency grow without
bound. If one merged call fails, each request in it is retried on its own, so a bad
request cannot fail the others batched with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from sapbert_st.linking.checks import check_positive_int

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """More than ``max_queue`` requests are waiting: the service is overloaded."""


@dataclass
class _Job:
    key: Hashable
    items: list
    future: asyncio.Future


class MicroBatcher:
    """Gather concurrent ``submit(key, items)`` calls into few ``function(key, items)`` calls.

    Args:
        function: ``function(key, items) -> results``, one result per item, in order. It runs
            in one worker thread, one call at a time (the model is never used concurrently).
        max_batch: Items per call (the batch stops growing once it has this many; a single
            larger request still runs whole).
        max_wait_s: How long the first request of a batch waits for others when the queue
            is empty. 0 still batches everything that queued during the previous call.
        max_queue: Requests waiting at most; more raise :class:`QueueFullError`.

    Example:
        ::

            batcher = MicroBatcher(lambda key, mentions: linker.link(mentions, k=key))
            results = await batcher.submit(5, ["heart attack", "fits"])
    """

    def __init__(self, function: Callable[[Hashable, list], Sequence], *, max_batch: int = 64,
                 max_wait_s: float = 0.002, max_queue: int = 1024) -> None:
        self.function = function
        self.max_batch = check_positive_int(max_batch, "max_batch")
        if isinstance(max_wait_s, bool) or not isinstance(max_wait_s, (int, float)) or not (
                0 <= max_wait_s <= 1):
            raise ValueError(f"max_wait_s: expected seconds between 0 and 1, got {max_wait_s!r}")
        self.max_wait_s = float(max_wait_s)
        self.max_queue = check_positive_int(max_queue, "max_queue")
        self.calls = 0
        self.items = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: list[_Job] = []

    def stats(self) -> dict[str, Any]:
        """Calls, items and requests so far, the mean items per call, and the queue now."""
        return {"calls": self.calls, "items": self.items, "requests": self.requests,
                "mean_batch": round(self.items / self.calls, 2) if self.calls else None,
                "queued": self._queue.qsize() if self._queue is not None else 0,
                "max_batch": self.max_batch, "max_wait_ms": self.max_wait_s * 1000,
                "max_queue": self.max_queue}

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is not None and self._loop is loop and not self._worker.done():
            return
        # first use, or a new event loop (a test client started again): a fresh queue
        self._loop = loop
        self._queue = asyncio.Queue()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="sapbert-st-batch")
        self._worker = loop.create_task(self._work(), name="sapbert-st micro-batcher")

    async def submit(self, key: Hashable, items: Sequence) -> list:
        """The results of ``function(key, items)``, computed in a batch with other requests.

        Raises:
            QueueFullError: ``max_queue`` requests are already waiting.
        """
        self._ensure_started()
        if self._queue.qsize() >= self.max_queue:
            raise QueueFullError(f"{self._queue.qsize()} requests are waiting, the limit is "
                                 f"{self.max_queue}; retry later")
        future = self._loop.create_future()
        self._queue.put_nowait(_Job(key, list(items), future))
        return await future

    async def close(self) -> None:
        """Stop the worker, fail what is still queued, and release the worker thread."""
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        waiting = list(self._running)
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(QueueFullError("the server is shutting down"))
        self._running = []
        self._worker = self._queue = self._loop = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # ------------------------------------------------------------------ the worker

    async def _gather(self) -> list[_Job]:
        """The next batch: the first waiting job, every job queued behind it, and those that
        arrive within ``max_wait_s`` while the batch is not full."""
        jobs = [await self._queue.get()]
        size = len(jobs[0].items)
        deadline = self._loop.time() + self.max_wait_s
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _work(self) -> None:
        while True:
            jobs = await self._gather()
            groups: dict[Hashable, list[_Job]] = {}
            for job in jobs:
                if not job.future.done():  # a cancelled request (client gone) is skipped
                    groups.setdefault(job.key, []).append(job)
            for key, group in groups.items():
                await self._run(key, group)

    async def _run(self, key: Hashable, group: list[_Job]) -> None:
        items = [item for job in group for item in job.items]
        self._running = group
        try:
            results = await self._loop.run_in_executor(self._executor, self.function, key, items)
            if len(results) != len(items):
                raise RuntimeError(f"function returned {len(results)} results for "
                                   f"{len(items)} items")
        except Exception as exc:  # noqa: BLE001 - a failure goes to the request(s) it hit
            if len(group) > 1:  # find the request that failed; the others still succeed
                for job in group:
                    await self._run(key, [job])
                return
            if not group[0].future.done():
                group[0].future.set_exception(exc)
            return
        self.calls += 1
        self.items += len(items)
        self.requests += len(group)
        start = 0
        for job in group:
            end = start + len(job.items)
            if not job.future.done():
                job.future.set_result(list(results[start:end]))
            start = end
