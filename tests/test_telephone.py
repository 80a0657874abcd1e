"""The corpus's telephone channel (training.telephone): levels, and the mobile leg's
GSM 06.10 and AMR-NB round trips, run by the real sox on signals made here."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.signal import welch

from bridge.audio.chunk import Encoding
from training import telephone as tel
from training.telephone import AMR_NB, GSM, ChannelParams, CodecError, mobile_round_trip


def speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A voiced sound (harmonics of a wavering 110-130 Hz pitch, loudest near the first
    two formants, 500 and 1500 Hz) under a syllable-rate envelope: what a speech codec
    is made to keep."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(8000 * seconds)) / 8000
    pitch = 120 + 10 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / 8000
    voiced = np.zeros_like(t)
    for k in range(1, 30):
        f = 120 * k
        weight = np.exp(-(((f - 500) / 300) ** 2)) + 0.5 * np.exp(-(((f - 1500) / 400) ** 2))
        voiced += (weight + 0.02) * np.sin(k * phase)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    return (voiced * envelope / np.max(np.abs(voiced)) * 8000).astype(np.int16)


def band_share(pcm: np.ndarray, low: float, high: float) -> float:
    freqs, power = welch(pcm.astype(np.float64), fs=8000, nperseg=512)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


@pytest.mark.parametrize(("codec", "mode"), [(GSM, 7), (AMR_NB, 0), (AMR_NB, 7)])
def test_a_mobile_codec_round_trip_keeps_length_and_level_but_not_the_samples(codec, mode):
    pcm = speech_like()
    out = mobile_round_trip(pcm, codec, mode)
    assert out.dtype == np.int16 and len(out) == len(pcm)
    level = 20 * np.log10(np.std(out.astype(float)) / np.std(pcm.astype(float)))
    assert abs(level) < 3.0, "the codec keeps the talker's level"
    assert not np.array_equal(out, pcm), "a lossy codec changes the samples"
    # Speech codecs keep the voice band and lose what is above it.
    assert band_share(out, 300, 3400) > 0.9 * band_share(pcm, 300, 3400)


def test_amr_at_its_lowest_rate_loses_more_than_at_its_highest():
    pcm = speech_like(seed=1)

    def error(mode: int) -> float:
        out = mobile_round_trip(pcm, AMR_NB, mode).astype(float)
        # compare spectra, not samples: AMR delays the signal by 5 ms
        _, p_in = welch(pcm.astype(float), fs=8000, nperseg=256)
        _, p_out = welch(out, fs=8000, nperseg=256)
        return float(np.mean(np.abs(np.log10(p_out + 1e-9) - np.log10(p_in + 1e-9))))

    assert error(0) > error(7)


def test_without_sox_the_mobile_leg_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(tel.shutil, "which", lambda name: None)
    with pytest.raises(CodecError, match="apt-get install sox"):
        mobile_round_trip(speech_like(0.1), GSM)


def test_channels_are_drawn_from_minus_30_dbfs_up_with_a_mobile_leg_on_two_in_five():
    rng = random.Random(4)
    drawn = [ChannelParams.sample(rng) for _ in range(2000)]
    assert min(p.gain_db for p in drawn) >= -27.0 and max(p.gain_db for p in drawn) <= 0.0
    share = {m: sum(p.mobile == m for p in drawn) / 2000 for m in ("", GSM, AMR_NB)}
    assert share[GSM] == pytest.approx(0.2, abs=0.03)
    assert share[AMR_NB] == pytest.approx(0.2, abs=0.03)
    assert {p.amr_mode for p in drawn} == set(range(8))
    names = {p.codec_name for p in drawn}
    assert names == {"ulaw", "alaw", GSM, AMR_NB}


def test_the_quietest_channel_peaks_near_minus_30_dbfs():
    audio = (0.3 * np.sin(np.arange(8000) * 2 * np.pi * 1000 / 8000)).astype(np.float32)
    quiet = tel.telephone(audio, 8000, ChannelParams(float("inf"), -27.0, Encoding.ULAW), 1)
    peak_dbfs = 20 * np.log10(np.max(np.abs(quiet.astype(float))) / 32768)
    assert peak_dbfs == pytest.approx(-30.0, abs=1.0)
