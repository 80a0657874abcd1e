"""``amd-bridge detect FILE...``: one JSON line per recording."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from bridge.cli.audio_files import read_audio_file
from bridge.engine import BatchingEngine, Detector, build_batching_engine
from bridge.errors import AudioFileError
from bridge.session.decision import Decision, round_or_none
from bridge.session.recording import Analyze, batch_analysis_timeout, decide_recording
from bridge.settings import Settings

log = logging.getLogger(__name__)


def decision_record(file: str, decision: Decision) -> dict[str, Any]:
    """A JSON line of ``detect``: the decision's summary plus compute and timing."""
    timing = decision.timing
    return {
        "file": file,
        **decision.summary(),
        "compute_ms": round_or_none(decision.compute_ms, 1),
        "initial_silence_s": round_or_none(timing.initial_silence_s if timing else None, 3),
        "speech_s": round_or_none(timing.speech_s if timing else None, 3),
    }


def files_at_once(settings: Settings) -> int:
    """Recordings a batch command keeps in flight: what the engine takes at once."""
    return max(settings.batch_size, 1) * settings.engine_workers


async def decide_file(path: Path, settings: Settings, analyze: Analyze) -> Decision:
    """The decision a call with this recording would get, without the live deadline
    (``batch_analysis_timeout``). Raises ``AudioFileError`` for a file it cannot read."""
    fmt, data = await asyncio.to_thread(read_audio_file, path)
    return await decide_recording(
        str(path),
        fmt,
        data,
        settings.policy,
        analyze,
        batch_analysis_timeout(settings.analysis_timeout_s),
    )


async def detect_files(
    paths: Sequence[Path], settings: Settings, detector: Detector, out: TextIO
) -> int:
    """Write one line per path, in order; return how many files failed.

    At most what the engine takes at once (``batch_size`` x ``engine_workers``) is in
    flight; each analysis may wait its turn (``batch_analysis_timeout``)."""
    engine = build_batching_engine(settings, detector)
    limit = asyncio.Semaphore(files_at_once(settings))
    try:
        tasks = [asyncio.ensure_future(_one(p, settings, engine, limit)) for p in paths]
        failures = 0
        for task in tasks:  # in input order; later files keep running meanwhile
            record = await task
            failures += "error" in record
            out.write(json.dumps(record) + "\n")
            out.flush()
        return failures
    finally:
        await engine.aclose()


async def _one(
    path: Path, settings: Settings, engine: BatchingEngine, limit: asyncio.Semaphore
) -> dict[str, Any]:
    async with limit:
        t0 = time.perf_counter()
        try:
            decision = await decide_file(path, settings, engine.analyze)
        except AudioFileError as exc:
            log.warning("%s", exc)
            return {"file": str(path), "error": str(exc)}
        record = decision_record(str(path), decision)
        log.debug("%s decided in %.1f ms wall", path, (time.perf_counter() - t0) * 1000)
        return record
