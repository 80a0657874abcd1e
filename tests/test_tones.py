"""The tone detector on generated call-progress signals and on real recordings.

Generated signals go through what a call does to them: 8 kHz, G.711 mu-law,
the bridge's resampler, 20 ms frames. Real recordings: Asterisk's own ``beep``
and recorded prompts (from the test Asterisk root), piper speech.
"""

from __future__ import annotations

import random
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.audio import AudioFormat, CallAudio, Encoding
from bridge.audio.codecs import encode_from_int16, float_to_int16
from bridge.tones import ToneEvent, ToneKind, ToneTracker
from training import tones as signal

RATE = 8000
ULAW = AudioFormat(Encoding.ULAW, RATE)


def track(audio: np.ndarray, chunk_ms: int = 20, fmt: AudioFormat = ULAW) -> list[ToneEvent]:
    """Run ``audio`` (float, 8 kHz) through a G.711 (or slin) call into a tracker."""
    data = encode_from_int16(fmt.encoding, float_to_int16(audio))
    call, tracker = CallAudio(fmt), ToneTracker(fmt.rate)
    step = RATE * chunk_ms // 1000 * fmt.bytes_per_sample
    for i in range(0, len(data), step):
        tracker.feed(call.decode(data[i : i + step]))
    tracker.end()
    return tracker.events


def kinds(events: list[ToneEvent]) -> list[ToneKind]:
    return [e.kind for e in events]


def padded(*parts: np.ndarray, lead_s: float = 0.5, tail_s: float = 0.5) -> np.ndarray:
    return np.concatenate([signal.silence(lead_s, RATE), *parts, signal.silence(tail_s, RATE)])


@pytest.mark.parametrize("freq", [400.0, 440.0, 700.0, 1000.0, 1400.0, 2000.0])
@pytest.mark.parametrize("seconds", [0.1, 0.25, 0.6, 1.5])
def test_a_beep_is_found_with_its_end_and_frequency(freq: float, seconds: float) -> None:
    events = track(padded(signal.tones((freq,), seconds, RATE, -12.0)))
    assert kinds(events) == [ToneKind.BEEP]
    beep = events[0]
    assert beep.freq_hz == pytest.approx(freq, abs=3.0)
    assert beep.end_s == pytest.approx(0.5 + seconds, abs=0.02)
    assert beep.start_s == pytest.approx(0.5, abs=0.02)
    assert 0.0 < beep.detected_s - beep.end_s < 0.1  # decided within 100 ms of its end


@pytest.mark.parametrize("level_db", [-36.0, -24.0, -6.0])
@pytest.mark.parametrize("snr_db", [10.0, 20.0, 40.0])
def test_beeps_at_any_level_in_noise(level_db: float, snr_db: float) -> None:
    rng = random.Random(f"{level_db}:{snr_db}")
    found = 0
    for k in range(5):
        freq, seconds = rng.uniform(400, 2000), rng.uniform(0.15, 1.2)
        audio = padded(signal.tones((freq,), seconds, RATE, level_db), lead_s=0.7, tail_s=0.6)
        events = track(signal.add_noise(audio, snr_db, level_db, seed=k))
        found += kinds(events) == [ToneKind.BEEP]
    assert found == 5


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_any_stream_rate_finds_the_same_beep(rate: int) -> None:
    audio = np.concatenate(
        [
            signal.silence(0.5, rate),
            signal.tones((850.0,), 0.4, rate, -10.0),
            signal.silence(0.5, rate),
        ]
    )
    tracker = ToneTracker(rate)
    step = rate // 50
    for i in range(0, len(audio), step):
        tracker.feed(audio[i : i + step])
    tracker.end()
    assert kinds(tracker.events) == [ToneKind.BEEP]
    assert tracker.events[0].end_s == pytest.approx(0.9, abs=0.02)
    assert tracker.events[0].freq_hz == pytest.approx(850.0, abs=3.0)


def test_a_law_calls_find_the_beep() -> None:
    events = track(padded(signal.tones((850.0,), 0.4, RATE)), fmt=AudioFormat(Encoding.ALAW, RATE))
    assert kinds(events) == [ToneKind.BEEP]


@pytest.mark.parametrize("seconds", [0.05, 0.08, 1.8, 4.0])
def test_tones_too_short_or_too_long_are_not_beeps(seconds: float) -> None:
    assert track(padded(signal.tones((1000.0,), seconds, RATE))) == []


@pytest.mark.parametrize("freq", [250.0, 2250.0])
def test_tones_outside_the_beep_band_are_not_beeps(freq: float) -> None:
    assert track(padded(signal.tones((freq,), 0.5, RATE))) == []


@pytest.mark.parametrize(
    "name",
    ["ringback", "busy", "dial_tone", "dtmf"],
)
def test_call_progress_tones_and_dtmf_give_no_beep(name: str) -> None:
    audio = {
        "ringback": lambda: signal.ringback(RATE),
        "busy": lambda: signal.busy(RATE),
        "dial_tone": lambda: signal.dial_tone(RATE),
        "dtmf": lambda: signal.dtmf("0123456789*#ABCD", RATE, on_s=0.12, off_s=0.4),
    }[name]()
    assert track(padded(audio)) == []


def test_a_melody_of_pure_notes_is_not_beeps() -> None:
    """Its first note, after silence, cannot be told from a beep without waiting for
    what follows; every later one is preceded by notes and is not a beep."""
    notes = (392.0, 440.0, 523.3, 587.3, 622.3, 523.3, 440.0)
    melody = np.concatenate([signal.tones((f,), 0.2, RATE, -14.0) for f in notes] * 3)
    events = track(padded(melody))
    assert [e.start_s for e in events if e.start_s > 0.6] == []


def test_fax_answer_tone_is_fax_before_it_ends() -> None:
    events = track(padded(signal.fax_ced(RATE, seconds=3.0)))
    assert kinds(events) == [ToneKind.FAX]
    assert events[0].freq_hz == pytest.approx(2100.0, abs=5.0)
    assert events[0].detected_s < 0.5 + 0.7  # reported after about 500 ms of it


def test_fax_calling_tone_is_fax() -> None:
    events = track(padded(signal.fax_cng(RATE)))
    assert kinds(events)[0] is ToneKind.FAX
    assert events[0].freq_hz == pytest.approx(1100.0, abs=5.0)


def test_an_1100_hz_beep_after_speech_is_a_beep_not_fax(speech_audio) -> None:  # type: ignore[no-untyped-def]
    greeting = speech_audio("Please leave a message.")
    events = track(padded(greeting, signal.silence(0.4, RATE), signal.tones((1100.0,), 0.5, RATE)))
    assert kinds(events) == [ToneKind.BEEP]


def test_special_information_tones_are_sit() -> None:
    events = track(padded(signal.sit(RATE), signal.silence(0.2, RATE)))
    assert ToneKind.SIT in kinds(events)
    sit = next(e for e in events if e.kind is ToneKind.SIT)
    assert sit.start_s == pytest.approx(0.5, abs=0.02)
    assert sit.end_s == pytest.approx(0.5 + 0.928, abs=0.03)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=2000), min_size=1, max_size=40))
def test_events_do_not_depend_on_how_the_audio_is_cut(cuts: list[int]) -> None:
    audio = padded(signal.tones((700.0,), 0.3, RATE), signal.silence(0.3, RATE), signal.sit(RATE))
    samples = CallAudio(ULAW).decode(encode_from_int16(Encoding.ULAW, float_to_int16(audio)))
    whole = ToneTracker(RATE)
    whole.feed(samples)
    whole.end()
    pieces, at = ToneTracker(RATE), 0
    for size in cuts * (len(samples) // sum(cuts) + 1):
        pieces.feed(samples[at : at + size])
        at += size
    pieces.end()
    strip = [(e.kind, round(e.start_s, 3), round(e.end_s, 3)) for e in whole.events]
    assert strip == [(e.kind, round(e.start_s, 3), round(e.end_s, 3)) for e in pieces.events]
    assert [e.kind for e in whole.events] == [ToneKind.BEEP, ToneKind.SIT]


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=8000))
def test_any_audio_gives_events_or_nothing_never_an_error(data: bytes) -> None:
    tracker = ToneTracker(RATE)
    tracker.feed(CallAudio(ULAW).decode(data))
    tracker.end()
    assert all(e.start_s <= e.end_s <= e.detected_s for e in tracker.events)


# --- real recordings ----------------------------------------------------------


def test_piper_speech_gives_no_tones(speech_audio) -> None:  # type: ignore[no-untyped-def]
    from tests.test_engine_real import HUMAN_OPENER, MACHINE_GREETING

    for text in (HUMAN_OPENER, MACHINE_GREETING, "Hello? Hello? Who is this, please?"):
        assert track(padded(speech_audio(text))) == []


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768


def test_asterisks_beep_prompt_is_a_beep(allison_prompts: Path) -> None:
    beep = read_wav(allison_prompts / "beep.wav")
    events = track(padded(read_wav(allison_prompts / "vm-intro.wav"), beep))
    assert kinds(events) == [ToneKind.BEEP]
    end = 0.5 + len(read_wav(allison_prompts / "vm-intro.wav")) / RATE + len(beep) / RATE
    assert events[0].end_s == pytest.approx(end, abs=0.03)
    assert events[0].freq_hz == pytest.approx(700.0, abs=5.0)


# Prompts that hold a real tone, not speech: Allison's beep, and the short tone
# confbridge-leave opens with (120 ms at 439 Hz, no harmonics).
TONE_PROMPTS = {"beep.wav", "confbridge-leave.wav"}


def test_asterisks_recorded_prompts_give_no_beep(allison_prompts: Path) -> None:
    files = sorted(p for p in allison_prompts.rglob("*.wav") if p.name not in TONE_PROMPTS)
    assert len(files) > 500  # about 25 minutes of one voice
    found = {p.name: track(padded(read_wav(p))) for p in files}
    assert {name: events for name, events in found.items() if events} == {}


def test_asterisks_music_on_hold_gives_no_beep(allison_prompts: Path) -> None:
    """Debian's opsound music on hold (about 18 minutes, one track made of pure notes)."""
    tracks = sorted((allison_prompts.parents[1] / "moh").glob("*.wav"))
    assert len(tracks) == 5
    found = {p.name: track(read_wav(p)) for p in tracks}
    assert {name: events for name, events in found.items() if events} == {}
