"""A telephone channel: 8 kHz, band-limited, noisy, level-shifted, G.711 round trip."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr
from scipy.signal import butter, sosfilt

from bridge.audio.chunk import Encoding
from bridge.audio.codecs import decode_to_int16, encode_from_int16, float_to_int16

PHONE_RATE = 8000
_BAND = butter(4, [300, 3400], btype="bandpass", fs=PHONE_RATE, output="sos")


@dataclass(frozen=True)
class ChannelParams:
    snr_db: float  # speech RMS over noise RMS; inf for none
    gain_db: float  # level change applied before the codec
    codec: Encoding  # ULAW or ALAW

    @classmethod
    def sample(cls, rng: random.Random) -> ChannelParams:
        return cls(
            snr_db=rng.choice([float("inf"), 40.0, 30.0, 20.0, 15.0]),
            gain_db=rng.uniform(-12.0, 0.0),
            codec=rng.choice([Encoding.ULAW, Encoding.ULAW, Encoding.ALAW]),
        )


def telephone(
    audio: npt.NDArray[np.float32], rate: int, params: ChannelParams, seed: int
) -> npt.NDArray[np.int16]:
    """Pass float audio through the channel; return 8 kHz int16 as the PBX would decode it."""
    x = soxr.resample(audio.astype(np.float32), rate, PHONE_RATE) if rate != PHONE_RATE else audio
    x = sosfilt(_BAND, x).astype(np.float32)
    peak = float(np.max(np.abs(x))) or 1.0
    x = x / peak * 0.7 * 10 ** (params.gain_db / 20)
    if np.isfinite(params.snr_db):
        speech = x[np.abs(x) > 0.01]
        rms = float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.05
        noise = np.random.default_rng(seed).normal(0, 1, len(x)).astype(np.float32)
        noise = sosfilt(_BAND, noise).astype(np.float32)
        noise *= rms / (float(np.sqrt(np.mean(noise**2))) or 1.0) / 10 ** (params.snr_db / 20)
        x = x + noise
    coded = encode_from_int16(params.codec, float_to_int16(x))
    return decode_to_int16(params.codec, coded)


def beep(rate: int, freq: float = 1000.0, seconds: float = 0.4) -> npt.NDArray[np.float32]:
    t = np.arange(int(rate * seconds)) / rate
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return (0.5 * np.sin(2 * np.pi * freq * t) * ramp).astype(np.float32)
