"""Speech timing from the silero VAD that ships inside faster-whisper's wheel.

faster-whisper's ``silero_vad_v6.onnx`` scores 32 ms windows (512 samples at
16 kHz) independently given a 64-sample context, so one ``run`` scores a
whole clip. Speech is a window above ``threshold``; a window only counts as
speech again after silence when it clears the threshold, and as silence only
below ``threshold - 0.15`` (the hysteresis silero's own helper uses).

The VAD counts people talking behind the callee as speech, which hides the callee's
pauses; so the timing is also given for the loudest voice alone (the foreground), with
how far the loud speech stands above the noise floor.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from bridge.audio.codecs import Float32Array
from bridge.audio.resampler import TARGET_RATE
from bridge.errors import ModelError
from bridge.session.decision import TimingFeatures

WINDOW = 512  # samples per VAD score at 16 kHz, fixed by the model
WINDOW_S = WINDOW / TARGET_RATE
# Speech more than this below the clip's loud speech, and not right beside it, is someone
# behind the talker. The corpus mixes background talk 0-20 dB below the talker.
FOREGROUND_DB = 9.0
# Speech windows this close to the talker's loud ones (0.13 s) are the talker's: a
# word's quiet onset and fading end, the dips between syllables.
FOREGROUND_REACH = 4


class SpeechTimer:
    """Computes ``TimingFeatures`` for clips; one instance per worker thread."""

    def __init__(self, threshold: float = 0.5) -> None:
        try:
            from faster_whisper.vad import get_vad_model

            self._model = get_vad_model()
        except Exception as exc:  # the wheel's asset missing or onnxruntime broken
            raise ModelError(f"could not load the silero VAD from faster-whisper: {exc}") from exc
        self.threshold = threshold

    def speech_probabilities(self, clip: Float32Array) -> Float32Array:
        n = len(clip) // WINDOW * WINDOW
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        # A copy: the model zeroes the last 64 samples of the array it is given.
        probs: Float32Array = np.asarray(self._model(clip[:n].copy()), np.float32)
        return probs.reshape(-1)

    def timing(self, clip: Float32Array) -> TimingFeatures:
        return timing_from_probabilities(
            self.speech_probabilities(clip),
            len(clip) / TARGET_RATE,
            self.threshold,
            window_levels_db(clip),
        )


def window_levels_db(clip: Float32Array) -> Float32Array:
    """RMS level of each VAD window, dB against full scale."""
    n = len(clip) // WINDOW * WINDOW
    windows = clip[:n].reshape(-1, WINDOW).astype(np.float64)
    power = np.mean(windows**2, axis=1) + 1e-10
    levels: Float32Array = (10 * np.log10(power)).astype(np.float32)
    return levels


def _near(flags: npt.NDArray[np.bool_], reach: int) -> npt.NDArray[np.bool_]:
    """Windows within ``reach`` windows of a flagged one (a word's quiet onset, its
    fading end and the dips between its syllables, around the loud part)."""
    out = flags.copy()
    for shift in range(1, reach + 1):
        out[shift:] |= flags[:-shift]
        out[:-shift] |= flags[shift:]
    return out


def _segments(flags: npt.NDArray[np.bool_]) -> int:
    if len(flags) == 0:
        return 0
    return int(flags[0]) + int(np.count_nonzero(flags[1:] & ~flags[:-1]))


def speech_flags(probs: Float32Array, threshold: float) -> npt.NDArray[np.bool_]:
    """Which windows are speech: from one that clears ``threshold`` until one falls below
    ``threshold - 0.15``."""
    low = threshold - 0.15
    speaking = False
    flags = np.zeros(len(probs), dtype=bool)
    for i, p in enumerate(probs):
        if p >= threshold:
            speaking = True
        elif p < low:
            speaking = False
        flags[i] = speaking
    return flags


def timing_from_probabilities(
    probs: Float32Array,
    clip_s: float,
    threshold: float,
    levels_db: Float32Array | None = None,
) -> TimingFeatures:
    """Turn per-window speech probabilities (and, when given, the windows' levels) into
    the classifier's timing features."""
    flags = speech_flags(probs, threshold)
    speech_idx = np.flatnonzero(flags)
    if len(speech_idx) == 0:
        return TimingFeatures(clip_s, 0.0, clip_s, 0, clip_s)
    first, last = int(speech_idx[0]), int(speech_idx[-1])
    trailing = max(0.0, clip_s - (last + 1) * WINDOW_S)
    overall = TimingFeatures(
        initial_silence_s=first * WINDOW_S,
        speech_s=len(speech_idx) * WINDOW_S,
        trailing_silence_s=trailing,
        segments=_segments(flags),
        clip_s=clip_s,
    )
    if levels_db is None or len(levels_db) != len(flags):
        return overall
    return foreground_timing(overall, flags, levels_db)


def foreground_flags(
    flags: npt.NDArray[np.bool_], levels_db: Float32Array, within_db: float = FOREGROUND_DB
) -> tuple[npt.NDArray[np.bool_], float]:
    """The loudest voice's windows among the speech ``flags`` (a non-empty clip of
    speech): those within ``within_db`` of the loud speech (its 90th percentile level,
    also returned), and the speech windows within ``FOREGROUND_REACH`` of them."""
    loud = float(np.percentile(levels_db[flags], 90))
    return flags & _near(flags & (levels_db >= loud - within_db), FOREGROUND_REACH), loud


def foreground_timing(
    overall: TimingFeatures, flags: npt.NDArray[np.bool_], levels_db: Float32Array
) -> TimingFeatures:
    """The talker is the loudest voice: speech windows within ``FOREGROUND_DB`` of the
    loud speech (its 90th percentile level), and those within ``FOREGROUND_REACH`` of
    them, are the foreground; the other speech windows are people behind the talker.
    The noise floor is the quietest tenth of the clip."""
    foreground, loud = foreground_flags(flags, levels_db)
    floor = float(np.percentile(levels_db, 10))
    fg_idx = np.flatnonzero(foreground)
    last = int(fg_idx[-1]) if len(fg_idx) else -1
    return replace(
        overall,
        foreground_speech_s=len(fg_idx) * WINDOW_S,
        foreground_trailing_s=max(0.0, overall.clip_s - (last + 1) * WINDOW_S),
        foreground_segments=_segments(foreground),
        background_speech_s=int(np.count_nonzero(flags & ~foreground)) * WINDOW_S,
        snr_db=min(max(loud - floor, 0.0), 60.0),
    )
