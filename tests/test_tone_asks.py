"""amd-train classifier learns only the asks the service makes: none after the tone
detector would have decided the call."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from bridge.audio.codecs import float_to_int16
from bridge.cli.audio_files import read_audio_file
from bridge.session.call import DecisionPolicy
from training import tones
from training.tone_asks import asked_windows, tone_decision_s

WINDOWS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0)


def decided_at(path: Path, policy: DecisionPolicy) -> float | None:
    return tone_decision_s(*read_audio_file(path), policy)


def write(path: Path, audio: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(float_to_int16(audio).tobytes())
    return path


def greeting(speech_wav, tmp_path: Path, beep_hz: float = 850.0) -> tuple[Path, float, float]:
    """A short voicemail greeting, its beep and 6 s of quiet: the file, the beep's end
    and the recording's length (s)."""
    with wave.open(str(speech_wav("Hi, it's Sam. Leave a message."))) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32)
    parts = [speech / 32768, tones.silence(0.3, 8000), tones.tones((beep_hz,), 0.4, 8000)]
    beep_end_s = sum(len(p) for p in parts) / 8000
    audio = np.concatenate([*parts, tones.silence(6.0, 8000)])
    return write(tmp_path / "greeting.wav", audio, 8000), beep_end_s, len(audio) / 8000


def test_a_greeting_s_beep_ends_the_asks_where_the_service_decides(
    speech_wav, tmp_path: Path
) -> None:
    path, beep_end_s, length_s = greeting(speech_wav, tmp_path)
    decided = decided_at(path, DecisionPolicy())
    assert decided is not None
    assert beep_end_s <= decided <= beep_end_s + 0.5 < length_s
    asked = asked_windows(WINDOWS, decided)
    assert asked == [w for w in WINDOWS if w < decided] and 0 < len(asked) < len(WINDOWS)


def test_a_beep_that_could_start_sit_decides_once_sit_did_not_follow(
    speech_wav, tmp_path: Path
) -> None:
    path, beep_end_s, _ = greeting(speech_wav, tmp_path, beep_hz=1000.0)
    decided = decided_at(path, DecisionPolicy())
    assert decided is not None and beep_end_s + 0.5 < decided <= beep_end_s + 2.0


def test_without_a_tone_or_with_tones_off_every_window_is_asked(speech_wav, tmp_path: Path) -> None:
    person = speech_wav("Hello? Who's this?", total_s=8.0)
    assert decided_at(person, DecisionPolicy()) is None
    assert asked_windows(WINDOWS, None) == list(WINDOWS)
    path, _, _ = greeting(speech_wav, tmp_path)
    assert decided_at(path, DecisionPolicy(tones=False)) is None
    assert decided_at(path, DecisionPolicy(beep_decides=False)) is None


def test_a_beep_before_any_words_is_not_a_voicemail_s(tmp_path: Path) -> None:
    audio = np.concatenate([tones.tones((1000.0,), 0.4, 8000), tones.silence(7.0, 8000)])
    path = write(tmp_path / "beep-first.wav", audio, 8000)
    assert decided_at(path, DecisionPolicy()) is None


@pytest.mark.parametrize("tone_s", [2.0, 2.5])
def test_an_ask_at_the_moment_the_tone_decided_is_not_made(tone_s: float) -> None:
    assert asked_windows(WINDOWS, tone_s) == [w for w in WINDOWS if w < tone_s]
