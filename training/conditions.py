"""What happens around the callee's voice before the codec: other people talking behind
them, steady noise, packets lost on the way. Drawn per recording from its own random
generator, so one seed gives one corpus.

Background talk is what the models got most wrong on calls unlike the corpus (a person
answering with an office or a television behind them was taken for a greeting): the
voice activity detector counts the background as speech, and the talker's pauses vanish.
It is drawn for greetings and live answers alike, so that it tells the classifier
nothing about the answer, only that timing is less to be trusted.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import soxr

from training.voices import FloatAudio, Voice

NONE, NOISE, BABBLE = "none", "noise", "babble"
FRAME_S = 0.020  # a lost packet takes this much audio with it


@dataclass(frozen=True)
class Condition:
    background: str  # NONE, NOISE (the channel's band noise) or BABBLE (other talkers)
    background_db: float  # the talker's level over the background, dB (inf for NONE)
    talkers: int  # other voices in the background (BABBLE only)
    lost_share: float  # share of 20 ms frames lost (zeroed), 0 for none

    @classmethod
    def sample(cls, rng: random.Random, talk: bool = True) -> Condition:
        """One recording's condition; ``talk=False`` for recorded announcements, which
        no one talks behind."""
        draw = rng.random() * (1.0 if talk else 0.65)
        lost = rng.uniform(0.01, 0.05) if rng.random() < 0.25 else 0.0
        if draw < 0.35:
            return cls(NONE, float("inf"), 0, lost)
        if draw < 0.65:
            return cls(NOISE, rng.choice([40.0, 30.0, 20.0, 15.0, 10.0]), 0, lost)
        return cls(BABBLE, rng.uniform(0.0, 20.0), rng.randint(1, 3), lost)

    @property
    def name(self) -> str:
        """The condition's kind for reports: ``babble``, ``noise``, ``none``, with
        ``+lost`` when frames were lost."""
        return self.background + ("+lost" if self.lost_share else "")


def babble(
    voices: Sequence[Voice],
    texts: Callable[[random.Random], str],
    rate: int,
    samples: int,
    talkers: int,
    rng: random.Random,
) -> FloatAudio:
    """``talkers`` voices drawn from ``voices``, each saying texts one after another
    with short gaps from a random start, mixed at ``rate`` and cut to ``samples``."""
    mix = np.zeros(samples, np.float32)
    for _ in range(talkers):
        voice = rng.choice(list(voices))
        at = -int(rng.uniform(0.0, 2.0) * rate)  # already talking when the call starts
        while at < samples:
            speech = voice.speak(texts(rng), rng)
            if voice.rate != rate:
                speech = soxr.resample(speech, voice.rate, rate).astype(np.float32)
            start, end = max(at, 0), min(at + len(speech), samples)
            if end > start:
                mix[start:end] += speech[start - at : end - at]
            at += len(speech) + int(rng.uniform(0.1, 0.8) * rate)
    return mix


def mix_below(talker: FloatAudio, background: FloatAudio, db: float) -> FloatAudio:
    """``talker`` with ``background`` added ``db`` below it (RMS over the talker's speech)."""
    speech = talker[np.abs(talker) > 0.01 * (float(np.max(np.abs(talker))) or 1.0)]
    talker_rms = float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.05
    background_rms = float(np.sqrt(np.mean(background**2))) or 1.0
    scaled = background * (talker_rms / background_rms / 10 ** (db / 20))
    return (talker + scaled).astype(np.float32)


def lose_frames(pcm: np.ndarray, rate: int, share: float, rng: random.Random) -> np.ndarray:
    """A copy of ``pcm`` with ``share`` of its 20 ms frames zeroed (lost packets that
    the far end replaced with silence)."""
    out = pcm.copy()
    frame = int(FRAME_S * rate)
    count = len(out) // frame
    for index in rng.sample(range(count), round(share * count)):
        out[index * frame : (index + 1) * frame] = 0
    return out
