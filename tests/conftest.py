"""Shared fixtures: real speech from piper through a telephone channel, real models."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bridge.audio.chunk import Encoding
from bridge.audio.codecs import decode_to_int16, encode_from_int16, float_to_int16

SpeechFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def piper_speaker():  # type: ignore[no-untyped-def]
    from training.synth import PiperSpeaker

    return PiperSpeaker()


@pytest.fixture(scope="session")
def speech_wav(piper_speaker, tmp_path_factory) -> SpeechFactory:  # type: ignore[no-untyped-def]
    """``speech_wav(text, lead_s=0.3, total_s=None)``: an 8 kHz WAV of piper speech after a
    mu-law round trip, i.e. what Asterisk hands over from a G.711 call."""
    import soxr

    folder = tmp_path_factory.mktemp("speech")
    cache: dict[tuple[str, float, float | None], Path] = {}

    def make(text: str, lead_s: float = 0.3, total_s: float | None = None) -> Path:
        key = (text, lead_s, total_s)
        if key in cache:
            return cache[key]
        audio = piper_speaker.speak(text)  # no rng: the same audio in every run
        audio = soxr.resample(audio, piper_speaker.rate, 8000).astype(np.float32)
        audio = audio / max(float(np.max(np.abs(audio))), 1e-6) * 0.5
        pieces = [np.zeros(int(8000 * lead_s), np.float32), audio]
        if total_s is not None and sum(len(p) for p in pieces) < total_s * 8000:
            pieces.append(np.zeros(int(total_s * 8000) - sum(len(p) for p in pieces), np.float32))
        pcm = float_to_int16(np.concatenate(pieces))
        pcm = decode_to_int16(Encoding.ULAW, encode_from_int16(Encoding.ULAW, pcm))
        path = folder / f"speech{len(cache)}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm.tobytes())
        cache[key] = path
        return path

    return make


@pytest.fixture(scope="session")
def allison_prompts() -> Path:
    """Asterisk's recorded English prompts, from the Debian root the Asterisk tests run."""
    from tests.asterisk.root import RootUnavailable, ensure_root, why_not_supported

    reason = why_not_supported()
    if reason:
        pytest.skip(reason)
    try:
        return ensure_root() / "usr/share/asterisk/sounds/en_US_f_Allison"
    except RootUnavailable as exc:
        pytest.fail(f"could not build the Asterisk root: {exc}")


@pytest.fixture(scope="session")
def detector():  # type: ignore[no-untyped-def]
    from bridge.engine import build_detector
    from bridge.settings import Settings

    return build_detector(Settings.load(environ={}))


@pytest.fixture(scope="session")
def speech_audio(speech_wav):  # type: ignore[no-untyped-def]
    """``speech_audio(text, lead_s=0.3)``: the same speech as ``speech_wav``, as 8 kHz float32."""

    def make(text: str, lead_s: float = 0.3) -> np.ndarray:
        with wave.open(str(speech_wav(text, lead_s))) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        return (pcm.astype(np.float32) / 32768).astype(np.float32)

    return make


@pytest.fixture(scope="session")
def greeting_then_beep(speech_wav):  # type: ignore[no-untyped-def]
    """``greeting_then_beep(rate, gap_s, beep_hz, beep_s, tail_s)``: a piper voicemail
    greeting, a pause, a beep and quiet, as float32 at ``rate``, with the beep's end (s)."""
    import soxr

    from tests.test_engine_real import MACHINE_GREETING
    from training import tones

    def make(
        rate: int, gap_s: float, beep_hz: float, beep_s: float, tail_s: float
    ) -> tuple[np.ndarray, float]:
        with wave.open(str(speech_wav(MACHINE_GREETING))) as w:
            speech = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
        greeting = soxr.resample(speech / 32768, 8000, rate).astype(np.float32)
        parts = [greeting, tones.silence(gap_s, rate), tones.tones((beep_hz,), beep_s, rate)]
        beep_end_s = sum(len(p) for p in parts) / rate
        return np.concatenate([*parts, tones.silence(tail_s, rate)]), beep_end_s

    return make
