"""Drive a call session over a whole recording (files, bulk evaluation, tests).

Audio is fed in 20 ms frames as a PBX would send it; while an analysis is in
flight, feeding pauses, so a recording always gets the decision a live call
would get from an engine that answers before the next checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bridge.audio import AudioChunk, AudioFormat
from bridge.audio.codecs import Float32Array
from bridge.errors import EngineError
from bridge.session.call import AnalysisRequest, CallSession, DecisionPolicy, Step
from bridge.session.decision import AnalysisResult, Decision, EarlierHearing
from bridge.session.message_end import MessageEnd

log = logging.getLogger(__name__)
# The engine: a clip, and what an earlier analysis of the same call heard (or None).
Analyze = Callable[[Float32Array, EarlierHearing | None], Awaitable[AnalysisResult]]
FRAME_S = 0.020
# A recording has no caller waiting: batch commands give each analysis at least
# this long, queue wait included, so a model slower than the queue makes a batch
# slow, not wrong (AMD_ANALYSIS_TIMEOUT_S is the live-call deadline). A hung engine
# still ends in NOTSURE/ERROR.
BATCH_ANALYSIS_TIMEOUT_S = 600.0


def batch_analysis_timeout(live_timeout_s: float) -> float:
    """The deadline of one analysis in ``detect`` and ``bulk-eval``."""
    return max(live_timeout_s, BATCH_ANALYSIS_TIMEOUT_S)


async def decide_recording(
    call_id: str,
    fmt: AudioFormat,
    data: bytes,
    policy: DecisionPolicy,
    analyze: Analyze,
    analysis_timeout_s: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> Decision:
    """The decision a call with this audio would get; never raises for engine failures."""
    session = CallSession(call_id, fmt, policy, clock())
    frame = max(fmt.bytes_per_sample, int(fmt.rate * FRAME_S) * fmt.bytes_per_sample)
    step: Step = None
    for offset in range(0, len(data), frame):
        step = session.feed(AudioChunk(fmt, data[offset : offset + frame]), clock())
        step = await settle(session, step, analyze, analysis_timeout_s, clock)
        if isinstance(step, Decision):
            return step
    step = session.end_of_stream(clock())
    await settle(session, step, analyze, analysis_timeout_s, clock)
    assert session.decision is not None, "a session always decides at end of stream"
    return session.decision


async def settle(
    session: CallSession,
    step: Step,
    analyze: Analyze,
    timeout_s: float,
    clock: Callable[[], float],
) -> Decision | MessageEnd | None:
    """Run the session's analysis requests until it decides or waits for more audio.

    A failed or late analysis is the session's NOTSURE/ERROR, never an exception.
    """
    while isinstance(step, AnalysisRequest):
        try:
            result = await asyncio.wait_for(analyze(step.clip, step.heard_before), timeout_s)
        except (asyncio.TimeoutError, EngineError) as exc:
            step = session.on_error(exc, clock())
        except Exception as exc:
            log.exception("call %s: analysis raised", session.call_id)
            step = session.on_error(exc, clock())
        else:
            step = session.on_result(result, clock())
    return step
