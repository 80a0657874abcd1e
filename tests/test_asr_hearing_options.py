"""The foreground gate of benchmarks/asr_hearing_options.py, on Asterisk's recorded
voice: the loud talker passes, a quieter voice in the talker's silence is lowered."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

from asr_hearing_options import GATE_ATTENUATION_DB, foreground_gate

from bridge.engine.vad import SpeechTimer
from training.manifests import read_16k


def rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def test_the_gate_keeps_the_loudest_voice_and_lowers_a_quieter_one(allison_prompts: Path):
    loud = read_16k(allison_prompts / "vm-intro.wav")[: 3 * 16000]
    quiet = read_16k(allison_prompts / "vm-goodbye.wav") * 10 ** (-15 / 20)
    gap = np.zeros(8000, np.float32)
    clip = np.concatenate([loud, gap, quiet]).astype(np.float32)
    gated = foreground_gate(SpeechTimer(), 9.0)(clip)
    talker = slice(0, len(loud) - 3200)  # away from the ramp at its end
    other = slice(len(loud) + len(gap) + 3200, len(clip))
    assert abs(rms_db(gated[talker]) - rms_db(clip[talker])) < 1.0
    lowered = rms_db(clip[other]) - rms_db(gated[other])
    assert GATE_ATTENUATION_DB - 3 < lowered <= GATE_ATTENUATION_DB + 0.5
    assert len(gated) == len(clip) and gated.dtype == np.float32


def test_a_clip_without_speech_passes_unchanged():
    silence = np.zeros(16000, np.float32)
    assert foreground_gate(SpeechTimer(), 9.0)(silence) is silence
