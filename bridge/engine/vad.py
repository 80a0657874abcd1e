"""Speech timing from the silero VAD that ships inside faster-whisper's wheel.

faster-whisper's ``silero_vad_v6.onnx`` scores 32 ms windows (512 samples at
16 kHz) independently given a 64-sample context, so one ``run`` scores a
whole clip. Speech is a window above ``threshold``; a window only counts as
speech again after silence when it clears the threshold, and as silence only
below ``threshold - 0.15`` (the hysteresis silero's own helper uses).
"""

from __future__ import annotations

import numpy as np

from bridge.audio.codecs import Float32Array
from bridge.audio.resampler import TARGET_RATE
from bridge.errors import ModelError
from bridge.session.decision import TimingFeatures

WINDOW = 512  # samples per VAD score at 16 kHz, fixed by the model
WINDOW_S = WINDOW / TARGET_RATE


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
            self.speech_probabilities(clip), len(clip) / TARGET_RATE, self.threshold
        )


def timing_from_probabilities(
    probs: Float32Array, clip_s: float, threshold: float
) -> TimingFeatures:
    """Turn per-window speech probabilities into the classifier's timing features."""
    low = threshold - 0.15
    speaking = False
    flags = np.zeros(len(probs), dtype=bool)
    for i, p in enumerate(probs):
        if p >= threshold:
            speaking = True
        elif p < low:
            speaking = False
        flags[i] = speaking
    speech_idx = np.flatnonzero(flags)
    if len(speech_idx) == 0:
        return TimingFeatures(clip_s, 0.0, clip_s, 0, clip_s)
    first, last = int(speech_idx[0]), int(speech_idx[-1])
    segments = int(flags[0]) + int(np.count_nonzero(flags[1:] & ~flags[:-1]))
    trailing = max(0.0, clip_s - (last + 1) * WINDOW_S)
    return TimingFeatures(
        initial_silence_s=first * WINDOW_S,
        speech_s=len(speech_idx) * WINDOW_S,
        trailing_silence_s=trailing,
        segments=segments,
        clip_s=clip_s,
    )
