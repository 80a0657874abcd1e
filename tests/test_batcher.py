"""The batcher gathers concurrent requests, bounds its queue and reports failures."""

import asyncio
import threading
import time

import numpy as np
import pytest

from bridge.engine.batcher import BatchingEngine
from bridge.errors import EngineError
from bridge.session.decision import AnalysisResult, TimingFeatures

TIMING = TimingFeatures(0.0, 1.0, 0.0, 1, 1.0)


class FakeEngine:
    """Echoes each clip's first sample as its probability; records batches and threads."""

    def __init__(self, delay_s: float = 0.0, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.delay_s = delay_s
        self.fail = fail

    def __call__(self, clips, heard_before):
        assert len(heard_before) == len(clips)
        self.threads.add(threading.current_thread().name)
        self.batches.append(len(clips))
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("GPU on fire")
        return [AnalysisResult(f"clip {c[0]}", float(c[0]), TIMING, 1.0, len(clips)) for c in clips]


def clip(value: float) -> np.ndarray:
    return np.full(10, value, dtype=np.float32)


def test_concurrent_requests_share_a_batch_and_get_their_own_answer():
    fake = FakeEngine()

    async def main():
        engine = BatchingEngine(fake, max_batch=8, max_wait_s=0.05)
        values = [i / 10 for i in range(6)]
        results = await asyncio.gather(*(engine.analyze(clip(v)) for v in values))
        await engine.aclose()
        return values, results, engine.stats

    values, results, stats = asyncio.run(main())
    assert [r.proba_human for r in results] == pytest.approx(values)
    assert fake.batches == [6]
    assert stats.batches == 1 and stats.clips == 6
    assert all(name.startswith("amd-engine") for name in fake.threads)


def test_batches_never_exceed_the_maximum():
    fake = FakeEngine(delay_s=0.01)

    async def main():
        engine = BatchingEngine(fake, max_batch=4, max_wait_s=0.05, workers=2)
        await asyncio.gather(*(engine.analyze(clip(0.5)) for _ in range(11)))
        await engine.aclose()

    asyncio.run(main())
    assert sum(fake.batches) == 11
    assert max(fake.batches) <= 4


def test_a_lone_request_waits_no_longer_than_the_batch_wait():
    fake = FakeEngine()

    async def main():
        engine = BatchingEngine(fake, max_batch=32, max_wait_s=0.02)
        t0 = time.perf_counter()
        await engine.analyze(clip(0.1))
        waited = time.perf_counter() - t0
        await engine.aclose()
        return waited

    assert asyncio.run(main()) < 0.5  # generous: only that it does not wait for a full batch
    assert fake.batches == [1]


def test_failure_reaches_every_caller_in_the_batch_and_the_engine_keeps_working():
    fake = FakeEngine(fail=True)

    async def main():
        engine = BatchingEngine(fake, max_batch=8, max_wait_s=0.01)
        outcomes = await asyncio.gather(
            *(engine.analyze(clip(0.1)) for _ in range(3)), return_exceptions=True
        )
        fake.fail = False
        after = await engine.analyze(clip(0.7))
        await engine.aclose()
        return outcomes, after, engine.stats

    outcomes, after, stats = asyncio.run(main())
    assert all(isinstance(o, EngineError) and "GPU on fire" in str(o) for o in outcomes)
    assert after.proba_human == pytest.approx(0.7)
    assert stats.failed_batches == 1


def test_full_queue_refuses_at_once():
    fake = FakeEngine(delay_s=0.2)

    async def main():
        engine = BatchingEngine(fake, max_batch=1, max_wait_s=0.0, workers=1, max_queue=2)
        first = asyncio.ensure_future(engine.analyze(clip(0.1)))
        await asyncio.sleep(0.05)  # the first is running; now fill the queue
        queued = [asyncio.ensure_future(engine.analyze(clip(0.2))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(EngineError, match="queue full"):
            await engine.analyze(clip(0.3))
        await asyncio.gather(first, *queued)
        await engine.aclose()
        return engine.stats

    assert asyncio.run(main()).rejected == 1


def test_close_fails_waiting_requests_and_refuses_new_ones():
    fake = FakeEngine()

    async def main():
        engine = BatchingEngine(fake, max_batch=8, max_wait_s=10.0)
        waiting = asyncio.ensure_future(engine.analyze(clip(0.1)))
        await asyncio.sleep(0.01)
        await engine.aclose()
        with pytest.raises(EngineError, match="shut down"):
            await waiting
        with pytest.raises(EngineError, match="shut down"):
            await engine.analyze(clip(0.1))

    asyncio.run(main())
    assert fake.batches == []


def test_a_caller_that_gave_up_is_skipped():
    fake = FakeEngine()

    async def main():
        engine = BatchingEngine(fake, max_batch=8, max_wait_s=0.05)
        gave_up = asyncio.ensure_future(engine.analyze(clip(0.1)))
        kept = asyncio.ensure_future(engine.analyze(clip(0.2)))
        await asyncio.sleep(0.001)
        gave_up.cancel()
        result = await kept
        await engine.aclose()
        return result

    assert asyncio.run(main()).proba_human == pytest.approx(0.2)
    assert fake.batches == [1]


@pytest.mark.parametrize("kwargs", [{"max_batch": 0}, {"workers": 0}, {"max_queue": 0}])
def test_bad_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        BatchingEngine(FakeEngine(), **kwargs)
