"""Gathers analysis requests from many calls into batches run off the event loop.

A request waits at most ``max_wait_s`` for others to join it (or until
``max_batch`` are waiting); the batch then runs as one ``analyze_batch`` in a
worker thread (CTranslate2 and onnxruntime release the GIL). At most
``workers`` batches run at once; the queue of waiting requests is bounded
and a request past the bound fails at once rather than waiting forever.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bridge.audio.codecs import Float32Array
from bridge.errors import EngineError
from bridge.session.decision import AnalysisResult, EarlierHearing

log = logging.getLogger(__name__)

# Clips, and for each what an earlier analysis of its call heard (None: nothing yet).
AnalyzeBatch = Callable[
    [Sequence[Float32Array], Sequence[EarlierHearing | None]], list[AnalysisResult]
]


@dataclass
class BatchStats:
    batches: int = 0
    clips: int = 0
    rejected: int = 0
    failed_batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)  # last 1,000, for reports

    def record(self, size: int) -> None:
        self.batches += 1
        self.clips += size
        self.batch_sizes.append(size)
        del self.batch_sizes[:-1000]

    @property
    def outcomes(self) -> collections.Counter[str]:
        """The counts as outcomes (for metrics): clips rejected, batches failed."""
        return collections.Counter(
            {"clips_rejected_queue_full": self.rejected, "batches_failed": self.failed_batches}
        )


@dataclass
class _Pending:
    clip: Float32Array
    heard_before: EarlierHearing | None
    future: asyncio.Future[AnalysisResult]
    queued_at: float


class BatchingEngine:
    """Async front of a synchronous ``analyze_batch``; create and use on one event loop.

    A clip waits in ``pending`` until a worker is free and either a full batch
    is there or its wait is over; when a worker finishes, whatever waited
    meanwhile goes at once. ``max_queue`` bounds ``pending``.
    """

    def __init__(
        self,
        analyze_batch: AnalyzeBatch,
        max_batch: int = 16,
        max_wait_s: float = 0.005,
        workers: int = 1,
        max_queue: int = 1024,
    ) -> None:
        if max_batch < 1 or workers < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("batch size, workers and queue bound must be positive")
        self._analyze_batch = analyze_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.workers = workers
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="amd-engine")
        self._running = 0
        self._pending: list[_Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = BatchStats()
        self._closed = False
        # Called with each batch's queue waits (seconds), for metrics.
        self.on_batch: Callable[[list[float]], None] | None = None

    @property
    def queued(self) -> int:
        """Clips waiting for a batch (not yet running)."""
        return len(self._pending)

    async def analyze(
        self, clip: Float32Array, heard_before: EarlierHearing | None = None
    ) -> AnalysisResult:
        """Analyse one clip, batched with whatever else arrives meanwhile."""
        if self._closed:
            raise EngineError("engine is shut down")
        if len(self._pending) >= self.max_queue:
            self.stats.rejected += 1
            raise EngineError(f"engine queue full ({self.max_queue} clips waiting)")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AnalysisResult] = loop.create_future()
        self._pending.append(_Pending(clip, heard_before, future, time.perf_counter()))
        if len(self._pending) >= self.max_batch:
            self._dispatch()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._on_timer)
        return await future

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and self._running < self.workers:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._running += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not self._pending and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _run(self, batch: list[_Pending]) -> None:
        try:
            await self._run_batch([p for p in batch if not p.future.done()])
        finally:
            self._running -= 1
            if self._pending and not self._closed:
                self._dispatch()  # those who waited for a worker go now

    async def _run_batch(self, live: list[_Pending]) -> None:
        if not live:  # every caller gave up
            return
        loop = asyncio.get_running_loop()
        if self.on_batch is not None:
            started = time.perf_counter()
            self.on_batch([started - p.queued_at for p in live])
        try:
            results = await loop.run_in_executor(
                self._executor,
                self._analyze_batch,
                [p.clip for p in live],
                [p.heard_before for p in live],
            )
        except Exception as exc:
            self.stats.failed_batches += 1
            log.exception("engine batch of %d failed", len(live))
            for p in live:
                if not p.future.done():
                    p.future.set_exception(EngineError(f"analysis failed: {exc}"))
            return
        self.stats.record(len(live))
        for p, result in zip(live, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)

    async def aclose(self) -> None:
        """Finish running batches, fail waiting ones, stop the threads."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for p in self._pending:
            if not p.future.done():
                p.future.set_exception(EngineError("engine is shut down"))
        self._pending.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._executor.shutdown(wait=True)
