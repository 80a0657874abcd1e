"""Call-progress signals to test and measure the tone detector with.

Frequencies and cadences from the standards they come from: North American
precise tones (ANSI T1.401: dial 350+440 Hz, ringback 440+480 Hz 2 s on 4 s off,
busy 480+620 Hz 0.5/0.5 s), DTMF (ITU-T Q.23), fax CNG and CED (ITU-T T.30),
special information tones (Telcordia GR-1162). All return float32 at ``rate``
with a level in dB relative to a full-scale sine.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]

DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = "123A456B789C*0#D"
SIT_NOT_IN_SERVICE = ((913.8, 0.274), (1370.6, 0.274), (1776.7, 0.380))


def silence(seconds: float, rate: int) -> Audio:
    return np.zeros(int(round(seconds * rate)), np.float32)


def tones(
    freqs: tuple[float, ...], seconds: float, rate: int, level_db: float = -12.0, phase: float = 0.0
) -> Audio:
    """The sum of sines (each at ``level_db``) with 5 ms raised-cosine edges, as a
    generator shapes them to avoid clicks."""
    t = np.arange(int(round(seconds * rate))) / rate
    amplitude = 10 ** (level_db / 20)
    signal = sum(np.sin(2 * np.pi * f * t + phase) for f in freqs) * amplitude
    edge = min(int(0.005 * rate), len(t) // 2)
    if edge:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(edge) / edge)
        signal[:edge] *= ramp
        signal[-edge:] *= ramp[::-1]
    return np.asarray(signal, np.float32)


def cadence(on: Audio, off_s: float, cycles: int, rate: int) -> Audio:
    return np.concatenate([np.concatenate([on, silence(off_s, rate)]) for _ in range(cycles)])


def ringback(rate: int, cycles: int = 2, level_db: float = -16.0) -> Audio:
    return cadence(tones((440.0, 480.0), 2.0, rate, level_db), 4.0, cycles, rate)


def busy(rate: int, cycles: int = 6, level_db: float = -16.0) -> Audio:
    return cadence(tones((480.0, 620.0), 0.5, rate, level_db), 0.5, cycles, rate)


def dial_tone(rate: int, seconds: float = 5.0, level_db: float = -16.0) -> Audio:
    return tones((350.0, 440.0), seconds, rate, level_db)


def dtmf(
    keys: str, rate: int, on_s: float = 0.1, off_s: float = 0.1, level_db: float = -10.0
) -> Audio:
    pieces = []
    for key in keys:
        index = DTMF_KEYS.index(key)
        pair = (DTMF_ROWS[index // 4], DTMF_COLUMNS[index % 4])
        pieces += [tones(pair, on_s, rate, level_db), silence(off_s, rate)]
    return np.concatenate(pieces)


def fax_ced(rate: int, seconds: float = 3.0, level_db: float = -12.0) -> Audio:
    return tones((2100.0,), seconds, rate, level_db)


def fax_cng(rate: int, cycles: int = 2, level_db: float = -12.0) -> Audio:
    return cadence(tones((1100.0,), 0.5, rate, level_db), 3.0, cycles, rate)


def sit(rate: int, level_db: float = -14.0) -> Audio:
    return np.concatenate([tones((f,), s, rate, level_db) for f, s in SIT_NOT_IN_SERVICE])


def add_noise(audio: Audio, snr_db: float, level_db: float, seed: int) -> Audio:
    """White noise ``snr_db`` under a sine of ``level_db`` (its power, not the mix's)."""
    sine_power = 10 ** (level_db / 10) / 2
    noise = np.random.default_rng(seed).normal(0, 1, len(audio)) * np.sqrt(
        sine_power / 10 ** (snr_db / 10)
    )
    return np.asarray(audio + noise, np.float32)
