"""Which of a recording's asks the service would make: none after its tone detector
has decided the call (a voicemail's beep after the first words, a fax or SIT tone).

The classifier is trained on recordings cut at fixed windows. A window that ends after
the greeting's beep holds "a few words, then silence", which is what a person who says
"Hello?" and waits sounds like; labelled ``machine``, it teaches the classifier that
such timing may be a machine, though the service never asks about it (the beep decided
first). So ``amd-train classifier`` keeps only the windows the service would ask.
"""

from __future__ import annotations

import asyncio
import logging

from bridge.audio import TARGET_RATE, AudioFormat
from bridge.audio.codecs import Float32Array
from bridge.session.call import DecisionPolicy
from bridge.session.decision import AnalysisResult, Cause, EarlierHearing, TimingFeatures
from bridge.session.recording import decide_recording

TONE_CAUSES = (Cause.BEEP, Cause.FAX, Cause.SIT)
# The session logs every tone it decides on at INFO: one line per recording here.
_SESSION_LOG = logging.getLogger("bridge.session.call")


async def _never_sure(clip: Float32Array, heard_before: EarlierHearing | None) -> AnalysisResult:
    """An engine that never decides: the call runs to its last ask unless a tone ends it."""
    seconds = len(clip) / TARGET_RATE
    return AnalysisResult("", 0.5, TimingFeatures(0.0, seconds, 0.0, 1, seconds), 0.0)


def tone_decision_s(fmt: AudioFormat, data: bytes, policy: DecisionPolicy) -> float | None:
    """Seconds of audio at which the service, with ``policy``, would decide this
    recording (as ``read_audio_file`` gives it) on a tone alone; None when no tone would."""
    level = _SESSION_LOG.level
    _SESSION_LOG.setLevel(max(level, logging.WARNING))
    try:
        decision = asyncio.run(decide_recording("tones", fmt, data, policy, _never_sure))
    finally:
        _SESSION_LOG.setLevel(level)
    return decision.decision_audio_s if decision.cause in TONE_CAUSES else None


def asked_windows(windows: list[float] | tuple[float, ...], tone_s: float | None) -> list[float]:
    """The windows the service would ask about when a tone decides at ``tone_s``."""
    return [w for w in windows if tone_s is None or w < tone_s]
